"""core/frame_alignment.py pinned by quantity (issue 21, mutation testing): tests only - the module is another
issue's to change. Summaries with late and non-monotonic samples, exact staleness boundaries, the nearest rule's
tie and finality, watermark pruning, undecided counts and the batch path's errors; second round: skew summaries
(lower median, maximum, ms rounding), per-stream rules, held stale samples, dropped runs and gap streams, the
late-sample rule right after frame 0, and the records (defaults, ``age_s``, frozen)."""

from __future__ import annotations

import dataclasses

import pytest

from wallx_ros.core.errors import AlignmentConfigError, NonMonotonicStampError
from wallx_ros.core.frame_alignment import (
    AlignedFrame,
    AlignmentConfig,
    AlignmentStats,
    FrameAligner,
    SkewSummary,
    StreamSpec,
    align_streams,
    summarize_skew,
)

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
    al = _aligner("nearest", start_ns=0)
    al.push("cam", 0, "c")
    assert al.flush(end_ns=0) == [] and al.stats.dropped_missing == {"cam": 0, "joints": 1}
    assert al.stats.dropped_stale == {"cam": 0, "joints": 0}
    cfg = AlignmentConfig(0.5, [StreamSpec("a", 0.1)])  # type: ignore[arg-type]  # half a frame per second is fine
    assert isinstance(cfg.streams, tuple) and cfg.frame_time_ns(0, 1) == 2_000_000_000
    for record, name in ((cfg, "fps"), (StreamSpec("a", 0.1), "name")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, 1)


def test_summarize_skew_is_the_lower_median_and_the_maximum_in_ms() -> None:
    """The recorder and bag reports print these: the lower median of an even count, never an interpolation."""
    assert summarize_skew([]) == SkewSummary(0, 0.0, 0.0)
    assert summarize_skew([7000]) == SkewSummary(1, 7.0, 7.0)
    assert summarize_skew(iter([4000, 1000, 5000, 2000])) == SkewSummary(4, 2.0, 5.0)  # the lower of 2 and 4 ms
    assert summarize_skew([9000, 3000, 1000, 7000, 5000]) == SkewSummary(5, 5.0, 9.0)
    assert summarize_skew([1500, 2500, 3500, 4500, 5500, 6500, 7500]) == SkewSummary(7, 4.5, 7.5)


def test_skew_summary_as_dict_rounds_to_microseconds() -> None:
    """The report's keys are fixed and its values rounded to the microsecond (3 decimals in ms)."""
    assert SkewSummary(3, 1.23456, 7.65432).as_dict() == {"frames": 3, "p50_ms": 1.235, "max_ms": 7.654}
    assert SkewSummary(0, 0.0, 0.0).as_dict() == {"frames": 0, "p50_ms": 0.0, "max_ms": 0.0}


def test_skew_per_stream_rule_and_age_of_the_chosen_samples() -> None:
    """A nearest-rule camera beside a latest-rule joint stream: every emitted frame records |stamp - t| in whole
    microseconds (floored), a sample after the frame has a negative age, and no frame reports drops."""
    cfg = AlignmentConfig(FPS, (StreamSpec("cam", 0.05, "nearest"), StreamSpec("joints", 0.05)))
    assert [cfg.rule_of(s) for s in cfg.streams] == ["nearest", "latest"] and cfg.hold_stale is False
    al: FrameAligner[str] = FrameAligner(cfg)
    for t_ns, name in ((0, "c0"), (98_765_433, "c1"), (203 * MS, "c2")):
        al.push("cam", t_ns, name)
    for t in (0, 100, 200):
        al.push("joints", t * MS, f"j{t}")
    frames = al.flush(end_ns=200 * MS)
    assert [f.values["cam"] for f in frames] == ["c0", "c1", "c2"]  # frame 2: 203 ms is nearer than 98.8 ms
    assert [(f.held, f.dropped_before, f.gap_streams) for f in frames] == [((), 0, ())] * 3
    assert frames[1].age_s("cam") == 0.001234567 and frames[2].age_s("cam") == -0.003
    assert frames[2].age_s("joints") == 0.0
    assert al.skew_samples() == {"cam": [0, 1234, 3000], "joints": [0, 0, 0]}
    assert al.skew() == {"cam": SkewSummary(3, 1.234, 3.0), "joints": SkewSummary(3, 0.0, 0.0)}
    assert al.skew()["cam"].as_dict() == {"frames": 3, "p50_ms": 1.234, "max_ms": 3.0}
    assert al.trailing_dropped == 0 and al.trailing_gap_streams == ()


def test_dropped_runs_and_gap_streams_are_reported_on_the_next_frame() -> None:
    """frame_gaps splits episodes from ``dropped_before``: its exact count and the union of the streams, reset
    by every emitted frame; what is dropped after the last frame stays in ``trailing_*``."""
    al = _aligner(start_ns=0)
    for t in (0, 100, 300, 400, 500, 600):  # no camera at 200 ms: stale at frame 2
        al.push("cam", t * MS, f"c{t}")
    for t in (0, 300, 400):  # joints stale at frames 1-2, and from frame 5 on
        al.push("joints", t * MS, f"j{t}")
    frames = al.flush(end_ns=600 * MS)
    assert [(f.index, f.dropped_before, f.gap_streams) for f in frames] == [
        (0, 0, ()), (3, 2, ("cam", "joints")), (4, 0, ())]
    assert al.trailing_dropped == 2 and al.trailing_gap_streams == ("joints",)
    assert al.stats.dropped == 4 and al.stats.dropped_stale == {"cam": 1, "joints": 4}
    assert al.stats.dropped_missing == {"cam": 0, "joints": 0}
    assert al.skew_samples() == {"cam": [0, 0, 0], "joints": [0, 0, 0]}


def test_hold_stale_keeps_the_frame_with_the_old_sample_and_counts_it() -> None:
    """With ``hold_stale`` a stale stream repeats its last sample (named in ``held``, counted per frame); a
    missing stream still drops the frame."""
    cfg = AlignmentConfig(FPS, (StreamSpec("cam", 0.05), StreamSpec("joints", 0.05)), start_ns=0, hold_stale=True)
    al: FrameAligner[str] = FrameAligner(cfg)
    for t in (0, 100, 200, 300):
        al.push("cam", t * MS, f"c{t}")
    for t in (10, 300):  # frame 0: joints missing; frames 1-2: 90 and 190 ms old
        al.push("joints", t * MS, f"j{t}")
    frames = al.flush(end_ns=300 * MS)
    assert [(f.index, f.held, f.dropped_before, f.gap_streams) for f in frames] == [
        (1, ("joints",), 1, ("joints",)), (2, ("joints",), 0, ()), (3, (), 0, ())]
    assert [f.values["joints"] for f in frames] == ["j10", "j10", "j300"]
    assert [f.sample_stamps_ns["joints"] for f in frames] == [10 * MS, 10 * MS, 300 * MS]
    stats = al.stats
    assert stats.held == {"cam": 0, "joints": 2} and stats.dropped_missing == {"cam": 0, "joints": 1}
    assert stats.dropped_stale == {"cam": 0, "joints": 0} and stats.emitted == 3 and stats.dropped == 1
    assert stats.summary() == "3 frames, 1 dropped (joints: 1 missing), held stale samples (joints: 2)"
    assert al.skew_samples()["joints"] == [90_000, 190_000, 0]
    assert al.skew()["joints"] == SkewSummary(3, 90.0, 190.0)


def test_held_nearest_stream_repeats_its_last_sample_not_a_nearer_future_one() -> None:
    """Nearest rule, stale on both sides: the frame holds the sample before it even when the one after is
    closer (a held value must be one the robot had already seen)."""
    cfg = AlignmentConfig(FPS, (StreamSpec("cam", 0.05, "nearest"), StreamSpec("joints", 0.05)), start_ns=0,
                          hold_stale=True)
    al: FrameAligner[str] = FrameAligner(cfg)
    al.push("cam", 0, "c0")
    al.push("cam", 280 * MS, "c280")
    for t in (0, 100, 200, 300):
        al.push("joints", t * MS, f"j{t}")
    frames = al.flush(end_ns=300 * MS)
    assert [(f.index, f.values["cam"], f.held) for f in frames] == [
        (0, "c0", ()), (1, "c0", ("cam",)), (2, "c0", ("cam",)), (3, "c280", ())]  # frame 2: 80 ms after > 200 before
    assert al.stats.held == {"cam": 2, "joints": 0}
    assert al.skew_samples()["cam"] == [0, 100_000, 200_000, 20_000]


def test_watermark_finality_checks_every_stream_with_its_own_rule() -> None:
    """A watermark at t makes a latest-rule stream final but a nearest-rule one only at t + max_age: the frame
    waits, and then takes the nearer sample that arrived meanwhile."""
    cfg = AlignmentConfig(FPS, (StreamSpec("cam", 0.05), StreamSpec("joints", 0.05, "nearest")))
    al: FrameAligner[str] = FrameAligner(cfg)
    al.push("cam", 0, "c0")
    al.push("joints", 0, "j0")
    assert [f.index for f in al.pop_ready()] == [0]
    al.push("cam", 60 * MS, "c60")
    al.push("joints", 90 * MS, "j90")
    assert al.pop_ready(watermark_ns=100 * MS) == []  # cam is final at 100 ms, joints only at 150 ms
    al.push("joints", 104 * MS, "j104")
    frames = al.pop_ready(watermark_ns=100 * MS)
    assert [(f.index, f.values) for f in frames] == [(1, {"cam": "c60", "joints": "j104"})]
    assert al.skew_samples() == {"cam": [0, 40_000], "joints": [0, 4000]}


def test_a_sample_at_or_before_frame_0_is_late_once_frame_0_is_out() -> None:
    """Late counting starts with the first decided frame (``_next == 1``), not the second."""
    al = _aligner()
    al.push("cam", 0, "c0")
    al.push("cam", 10 * MS, "c10")
    al.push("joints", 50 * MS, "j50")  # t0 = 50 ms
    frames = al.pop_ready(watermark_ns=50 * MS)
    assert [(f.index, f.stamp_ns, f.values["cam"]) for f in frames] == [(0, 50 * MS, "c10")]
    al.push("cam", 20 * MS, "c20")  # frame 0 (50 ms) is out: late
    al.push("cam", 51 * MS, "c51")  # after it: not late
    assert al.stats.late_samples == {"cam": 1, "joints": 0} and al.stats.samples == {"cam": 4, "joints": 1}
    assert al.stats.summary() == "1 frames, 0 dropped, 1 late samples"


def test_record_defaults_age_and_frozen_records() -> None:
    """Frames are built outside the aligner too (the spill file, tests): their defaults mean "nothing held or
    dropped"; the records are immutable once made."""
    frame = AlignedFrame(3, 300 * MS, {"a": 1}, {"a": 290 * MS})
    assert (frame.held, frame.dropped_before, frame.gap_streams) == ((), 0, ())
    assert frame.age_s("a") == 0.01
    assert AlignedFrame(0, 0, {"a": 1}, {"a": 2 * MS}).age_s("a") == -0.002
    result = align_streams(AlignmentConfig.uniform(FPS, ("a",), 0.05), {"a": [(0, 1)]})
    assert [f.values for f in result.frames] == [{"a": 1}] and result.errors == []
    for record, name in ((frame, "index"), (SkewSummary(1, 1.0, 1.0), "frames"), (result, "errors")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, 0)


def test_stream_spec_accepts_each_rule() -> None:
    """A stream's own rule overrides the config's; both known rules are accepted, others refused."""
    assert [StreamSpec("a", 0.1, r).rule for r in ("latest", "nearest", None)] == ["latest", "nearest", None]
    cfg = AlignmentConfig(FPS, (StreamSpec("a", 0.1, "latest"), StreamSpec("b", 0.1)), rule="nearest")
    assert [cfg.rule_of(s) for s in cfg.streams] == ["latest", "nearest"]
    with pytest.raises(AlignmentConfigError, match="rule must be one of"):
        StreamSpec("a", 0.1, "closest")
