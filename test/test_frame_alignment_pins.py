"""core/frame_alignment.py pinned by quantity (issue 21, mutation testing): tests only - the module is another
issue's to change. Summaries with late and non-monotonic samples, exact staleness boundaries, the nearest rule's
tie and finality, watermark pruning, undecided counts and the batch path's errors."""

from __future__ import annotations

import pytest

from wallx_ros.core.errors import AlignmentConfigError, NonMonotonicStampError
from wallx_ros.core.frame_alignment import AlignmentConfig, AlignmentStats, FrameAligner, StreamSpec, align_streams

MS = 1_000_000
FPS = 10.0  # frames every 100 ms


def _aligner(rule: str = "latest", max_age_s: float = 0.05, start_ns: int | None = None) -> FrameAligner[str]:
    return FrameAligner(AlignmentConfig.uniform(FPS, ("cam", "joints"), max_age_s, rule, start_ns))


def test_summary_counts_late_and_non_monotonic_samples() -> None:
    al = _aligner()
    al.push("cam", 0, "c0")
    al.push("joints", 0, "j0")
    al.push("cam", 100 * MS, "c1")
    al.push("joints", 100 * MS, "j1")
    assert [f.index for f in al.pop_ready()] == [0, 1]
    al.push("cam", 150 * MS, "late?")  # after frame 1 (100 ms) was emitted: not late, it feeds frame 2
    al.push("joints", 100 * MS + 1, "late")  # stamped before frame 1's time? no: after it -> not late either
    with pytest.raises(NonMonotonicStampError):
        al.push("cam", 150 * MS, "again")
    stats = al.stats
    assert stats.late_samples == {"cam": 0, "joints": 0} and stats.non_monotonic == {"cam": 1, "joints": 0}
    assert stats.summary() == "2 frames, 0 dropped, 1 non-monotonic samples ignored"
    late = _aligner()
    for t in (0, 100, 200):
        late.push("cam", t * MS, "c")
    late.push("joints", 0, "j")
    assert len(late.pop_ready(watermark_ns=200 * MS)) == 1  # frames 1-2 final but dropped: joints stale
    assert late.stats.dropped == 2
    late.push("joints", 150 * MS, "j late")  # frame 2 (200 ms) is out: too late for frame 1, counted
    text = late.stats.summary()
    assert late.stats.late_samples == {"cam": 0, "joints": 1}
    assert text == "1 frames, 2 dropped (joints: 2 stale), 1 late samples"


def test_summary_text_with_every_cause() -> None:
    stats = AlignmentStats(emitted=5, dropped=4, dropped_missing={"a": 1, "b": 0}, dropped_stale={"a": 2, "b": 1},
                           late_samples={"a": 2, "b": 3}, non_monotonic={"a": 0, "b": 4})
    assert stats.summary() == ("5 frames, 4 dropped (a: 1 missing, a: 2 stale, b: 1 stale), 5 late samples, "
                               "4 non-monotonic samples ignored")
    copy = stats.copy()
    copy.dropped_stale["a"] = 9
    assert stats.dropped_stale["a"] == 2 and copy.emitted == 5 and copy.late_samples == stats.late_samples
    assert AlignmentStats().summary() == "0 frames, 0 dropped"


@pytest.mark.parametrize(("age_ms", "kept"), [(50, True), (51, False)])
def test_latest_rule_staleness_boundary(age_ms: int, kept: bool) -> None:
    al = _aligner(max_age_s=0.05)
    al.push("cam", 0, "c0")
    al.push("joints", 0, "j0")
    al.push("cam", (100 - age_ms) * MS, "c1")
    al.push("joints", 100 * MS, "j1")
    al.push("cam", 200 * MS, "c2")
    frames = al.pop_ready()
    assert [f.index for f in frames] == ([0, 1] if kept else [0])
    if kept:
        assert frames[1].values == {"cam": "c1", "joints": "j1"}
        assert frames[1].sample_stamps_ns == {"cam": (100 - age_ms) * MS, "joints": 100 * MS}
    assert al.stats.dropped_stale == {"cam": 0 if kept else 1, "joints": 0}


def test_nearest_rule_tie_takes_the_earlier_and_finality_waits_for_max_age() -> None:
    al = _aligner("nearest", max_age_s=0.05)
    al.push("cam", 0, "c0")
    al.push("joints", 0, "j0")
    al.push("cam", 80 * MS, "early")
    al.push("cam", 120 * MS, "late")  # a tie around frame 1 (100 ms): the earlier wins
    al.push("joints", 90 * MS, "j1")
    assert [f.index for f in al.pop_ready()] == [0]  # joints has nothing at or after 100 ms: frame 1 could change
    assert [f.index for f in al.pop_ready(watermark_ns=149 * MS)] == []  # nearest needs watermark >= t + max_age
    frames = al.pop_ready(watermark_ns=150 * MS)
    assert frames[0].index == 1 and frames[0].values == {"cam": "early", "joints": "j1"}
    only_after = _aligner("nearest", max_age_s=0.05, start_ns=0)
    only_after.push("cam", 30 * MS, "after")
    only_after.push("joints", 0, "j")
    frame = only_after.flush(end_ns=0)
    assert frame[0].values["cam"] == "after"  # nothing at or before t: the first sample after it
    far = _aligner("nearest", max_age_s=0.05, start_ns=0)
    far.push("cam", 51 * MS, "too far")
    far.push("joints", 0, "j")
    assert far.flush(end_ns=0) == [] and far.stats.dropped_stale == {"cam": 1, "joints": 0}


def test_start_ns_missing_streams_and_grid_times() -> None:
    al = _aligner(start_ns=1000 * MS)
    assert al.t0_ns == 1000 * MS and al.next_frame_ns == 1000 * MS and al.waiting_for() == ("cam", "joints")
    al.push("cam", 900 * MS, "c")
    assert al.waiting_for() == ("joints",)
    al.push("joints", 1010 * MS, "j")
    frames = al.flush(end_ns=1200 * MS)
    assert [f.index for f in frames] == [] and al.stats.dropped == 3  # cam stale (>= 100 ms old) at every frame
    assert al.stats.dropped_missing == {"cam": 0, "joints": 1} and al.stats.dropped_stale == {"cam": 3, "joints": 2}
    assert al.next_frame_ns == 1300 * MS
    cfg = AlignmentConfig.uniform(3.0, ("a",), 0.1)
    assert [cfg.frame_time_ns(0, k) for k in (1, 2, 3)] == [333_333_333, 666_666_667, 1_000_000_000]
    assert _aligner().next_frame_ns is None and _aligner().t0_ns is None


def test_watermark_prunes_and_undecided_counts() -> None:
    al = _aligner()
    for t in range(0, 1000, 10):
        al.push("cam", t * MS, "c")
    assert al.pop_ready(watermark_ns=500 * MS) == [] and al.buffered() == 50  # the newest at or before 500 kept
    assert al.undecided(10_000 * MS) == 0  # no t0 yet
    al.push("joints", 600 * MS, "j")
    assert al.t0_ns == 600 * MS
    assert al.undecided(600 * MS) == 1 and al.undecided(899 * MS) == 3 and al.undecided(900 * MS) == 4
    assert al.undecided(599 * MS) == 0
    assert [f.index for f in al.pop_ready()] == [0]
    assert al.undecided(900 * MS) == 3
    empty = _aligner()
    assert empty.flush() == [] and empty.pop_ready(watermark_ns=5) == []


def test_batch_alignment_checks_stream_names_and_skips_bad_stamps() -> None:
    cfg = AlignmentConfig.uniform(FPS, ("cam", "joints"), 0.05)
    with pytest.raises(AlignmentConfigError, match="do not match the config's"):
        align_streams(cfg, {"cam": []})
    with pytest.raises(AlignmentConfigError, match="do not match"):
        align_streams(cfg, {"cam": [], "joints": [], "extra": []})
    samples = {"cam": [(0, "c0"), (100 * MS, "c1"), (50 * MS, "bad"), (200 * MS, "c2")],
               "joints": [(0, "j0"), (100 * MS, "j1"), (200 * MS, "j2")]}
    with pytest.raises(NonMonotonicStampError):
        align_streams(cfg, samples)
    result = align_streams(cfg, samples, skip_non_monotonic=True)
    assert [f.index for f in result.frames] == [0, 1, 2] and len(result.errors) == 1
    assert result.stats.non_monotonic == {"cam": 1, "joints": 0} and result.stats.emitted == 3
    assert [f.index for f in align_streams(cfg, samples, skip_non_monotonic=True, end_ns=150 * MS).frames] == [0, 1]


def test_configuration_errors() -> None:
    with pytest.raises(AlignmentConfigError, match="stream name is empty"):
        StreamSpec("", 0.1)
    with pytest.raises(AlignmentConfigError, match=r"max_age_s must be finite and >= 0, got -0.1"):
        StreamSpec("a", -0.1)
    assert StreamSpec("a", 0.0).max_age_ns == 0 and StreamSpec("a", 0.0015).max_age_ns == 1_500_000
    with pytest.raises(AlignmentConfigError, match="fps must be finite and > 0"):
        AlignmentConfig.uniform(0.0, ("a",), 0.1)
    with pytest.raises(AlignmentConfigError, match="no streams"):
        AlignmentConfig(FPS, ())
    with pytest.raises(AlignmentConfigError, match=r"stream names repeat: \['a'\]"):
        AlignmentConfig.uniform(FPS, ("a", "a", "b"), 0.1)
    with pytest.raises(AlignmentConfigError, match="rule must be one of"):
        AlignmentConfig.uniform(FPS, ("a",), 0.1, rule="closest")
    with pytest.raises(AlignmentConfigError, match="start_ns must be >= 0"):
        AlignmentConfig.uniform(FPS, ("a",), 0.1, start_ns=-1)
    assert AlignmentConfig.uniform(FPS, ("a",), 0.1, start_ns=0).start_ns == 0
    with pytest.raises(KeyError, match="unknown stream 'x'"):
        _aligner().push("x", 0, "v")


def test_counters_exactly() -> None:
    al = _aligner(start_ns=100 * MS)
    assert al.stats.samples == {"cam": 0, "joints": 0} and al.stats.late_samples == {"cam": 0, "joints": 0}
    al.push("cam", 0, "too early")  # before t0 - one period, while no frame is out yet: not late
    assert al.stats.late_samples == {"cam": 0, "joints": 0}
    for t in (100, 200, 300):
        al.push("cam", t * MS, "c")
        al.push("joints", t * MS, "j")
    assert al.stats.samples == {"cam": 4, "joints": 3}
    assert [f.index for f in al.pop_ready()] == [0, 1, 2]
    al.push("joints", 300 * MS + 1, "after the last frame")  # not late
    assert al.stats.late_samples["joints"] == 0
    late = _aligner(start_ns=0)
    late.push("cam", 0, "c")
    late.push("joints", 100 * MS, "j")
    assert late.pop_ready(watermark_ns=100 * MS) == []  # frames 0 (joints missing) and 1 (cam stale) dropped
    late.push("cam", 100 * MS, "exactly the last frame's time")  # frame 1 is out: late
    late.push("cam", 150 * MS, "after it")
    assert late.stats.late_samples == {"cam": 1, "joints": 0}
    late.push("joints", 150 * MS, "x")
    late2 = _aligner(start_ns=0)
    late2.push("cam", 0, "c")
    late2.push("joints", 200 * MS, "j")
    late2.pop_ready(watermark_ns=200 * MS)
    late2.push("cam", 50 * MS, "late 1")
    late2.push("cam", 60 * MS, "late 2")
    assert late2.stats.late_samples == {"cam": 2, "joints": 0} and late2.stats.samples == {"cam": 3, "joints": 1}


def test_nearest_rule_missing_and_records() -> None:
    import dataclasses

    al = _aligner("nearest", start_ns=0)
    al.push("cam", 0, "c")
    assert al.flush(end_ns=0) == [] and al.stats.dropped_missing == {"cam": 0, "joints": 1}
    assert al.stats.dropped_stale == {"cam": 0, "joints": 0}
    cfg = AlignmentConfig(0.5, [StreamSpec("a", 0.1)])  # type: ignore[arg-type]  # half a frame per second is fine
    assert isinstance(cfg.streams, tuple) and cfg.frame_time_ns(0, 1) == 2_000_000_000
    for record, name in ((cfg, "fps"), (StreamSpec("a", 0.1), "name")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, 1)
