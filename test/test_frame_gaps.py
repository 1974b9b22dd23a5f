"""core.frame_gaps with core.frame_alignment: a stream gap splits, holds or fails; time is never shifted.
Also the per-stream rules: cameras nearest in time (within half a frame period under jitter), state as of."""

from __future__ import annotations

import random

import pytest

from wallx_ros.core.frame_alignment import AlignmentConfig, FrameAligner, StreamSpec, align_streams, summarize_skew
from wallx_ros.core.frame_gaps import GapError, GapTracker

MS = 1_000_000


def _camera_dropout(hold: bool) -> list:  # type: ignore[type-arg]
    """10 fps; the camera sends nothing from 250 to 650 ms; the joints every 10 ms."""
    cfg = AlignmentConfig(fps=10.0, streams=(StreamSpec("cam", 0.1, "nearest"), StreamSpec("joints", 0.1)),
                          hold_stale=hold)
    cam = [(t * MS, t) for t in range(0, 1001, 100) if not 250 <= t <= 650]
    joints = [(t * MS, t) for t in range(0, 1001, 10)]
    return align_streams(cfg, {"cam": cam, "joints": joints}).frames


def test_split_starts_a_new_part_after_the_gap_and_keeps_every_frame_time() -> None:
    frames = _camera_dropout(hold=False)
    # frames at 400 and 500 ms have no image within 100 ms (200 / 700 ms): they are the gap
    assert [f.index for f in frames] == [0, 1, 2, 3, 6, 7, 8, 9, 10]
    tracker = GapTracker("split", 10.0)
    splits = [f.index for f in frames if tracker.check(f)]
    assert splits == [6]
    (event,) = tracker.events
    assert (event.kind, event.streams, event.start_ns, event.frames) == ("split", ("cam",), 400 * MS, 2)
    assert event.duration_s == pytest.approx(0.2) and "episode split" in event.describe()
    assert [f.stamp_ns for f in frames] == [f.index * 100 * MS for f in frames]  # nothing renumbered


def test_hold_repeats_the_last_sample_never_a_later_one() -> None:
    frames = _camera_dropout(hold=True)
    assert [f.index for f in frames] == list(range(11))
    by = {f.index: f for f in frames}
    assert by[4].held == ("cam",) and by[4].values["cam"] == 200 and by[4].age_s("cam") == pytest.approx(0.2)
    assert by[5].held == ("cam",) and by[5].values["cam"] == 200  # 700 ms is nearer, but in the future: hold
    assert by[3].held == () and by[3].values["cam"] == 200  # nearest within 100 ms
    tracker = GapTracker("hold", 10.0)
    assert not any(tracker.check(f) for f in frames)
    tracker.finish()
    assert tracker.held_frames == 2 and [(e.kind, e.frames) for e in tracker.events] == [("hold", 2)]


def test_fail_raises_at_the_first_gap_with_what_to_do() -> None:
    tracker = GapTracker("fail", 10.0)
    with pytest.raises(GapError, match=r"cam gap of 2 frames \(0\.20 s\).*gap_policy fail.*split"):
        for frame in _camera_dropout(hold=False):
            tracker.check(frame)


def test_frames_missing_at_the_start_or_end_are_no_gap() -> None:
    aligner: FrameAligner[int] = FrameAligner(AlignmentConfig(
        fps=10.0, streams=(StreamSpec("cam", 0.05), StreamSpec("joints", 0.05)), start_ns=0))
    for t in range(0, 501, 100):
        aligner.push("joints", t * MS, t)
    for t in range(200, 301, 100):  # the camera starts late and stops early
        aligner.push("cam", t * MS, t)
    tracker = GapTracker("split", 10.0)
    assert not any(tracker.check(f) for f in aligner.flush(500 * MS))
    tracker.finish(aligner.trailing_dropped)
    assert (tracker.leading_dropped, tracker.trailing_dropped, tracker.events) == (2, 2, [])
    assert "2 frames before the first complete one and 2 after" in tracker.summary()


def test_nearest_camera_under_jitter_never_takes_the_previous_image() -> None:
    """Camera stamps jitter by up to +-8 ms around a 30 fps grid whose t0 is a jittered stamp: with the
    nearest rule every frame takes the image of its own instant (the as-of rule took the previous image on a
    large share of frames); the joint state stays as of the frame time."""
    rng = random.Random(3)
    period = round(1e9 / 30)
    cam = [(k * period + rng.randint(-8, 8) * MS, k) for k in range(300)]
    joints = [(t, t) for t in range(0, 300 * period, 5 * MS)]
    def nearest(t: int) -> int:
        return min(cam, key=lambda s: abs(s[0] - t))[1]

    for rule in ("nearest", "latest"):
        cfg = AlignmentConfig(fps=30.0, streams=(StreamSpec("cam", 0.1, rule), StreamSpec("joints", 0.1)))
        frames = align_streams(cfg, {"cam": cam, "joints": joints}).frames
        not_nearest = [f.index for f in frames if f.values["cam"] != nearest(f.stamp_ns)]
        if rule == "nearest":
            assert not_nearest == [] and len(frames) > 290
            assert all(abs(f.sample_stamps_ns["cam"] - f.stamp_ns) <= period // 2 for f in frames)
            assert all(f.values["joints"] <= f.stamp_ns for f in frames)  # the state: never from the future
        else:
            assert len(not_nearest) > 30, "the as-of rule takes the previous image on many jittered frames"
    aligner: FrameAligner[int] = FrameAligner(AlignmentConfig(fps=30.0, streams=(StreamSpec("cam", 0.1, "nearest"),)))
    for stamp, value in cam:
        aligner.push("cam", stamp, value)
    aligner.flush()
    skew = aligner.skew()["cam"]
    assert 0 < skew.p50_ms <= 8.0 and skew.max_ms <= 16.0 and skew.frames > 290
    assert summarize_skew([1000, 3000, 2000]).as_dict() == {"frames": 3, "p50_ms": 2.0, "max_ms": 3.0}
