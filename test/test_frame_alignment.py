"""core.frame_alignment: fixed-fps frames from stamped streams; the same result live (incremental) and offline."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallx_ros.core.errors import AlignmentConfigError, NonMonotonicStampError
from wallx_ros.core.frame_alignment import (
    AlignmentConfig,
    FrameAligner,
    StreamSpec,
    align_streams,
)

MS = 1_000_000


def test_latest_rule_picks_newest_sample_at_or_before_each_frame() -> None:
    cfg = AlignmentConfig.uniform(10.0, ["cam", "joints"], max_age_s=0.15)
    cam = [(t * MS, f"c{t}") for t in (0, 40, 100, 130, 200, 260)]
    joints = [(t * MS, t) for t in range(5, 300, 10)]  # 100 Hz from 5 ms
    res = align_streams(cfg, {"cam": cam, "joints": joints})
    # t0 = the later first stamp = 5 ms; frames at 5, 105, 205 ms (flush ends at the newest stamp, 295 ms)
    assert [f.stamp_ns for f in res.frames] == [5 * MS, 105 * MS, 205 * MS]
    assert [f.index for f in res.frames] == [0, 1, 2]
    assert [f.values["cam"] for f in res.frames] == ["c0", "c100", "c200"]
    assert [f.values["joints"] for f in res.frames] == [5, 105, 205]
    assert res.frames[1].sample_stamps_ns == {"cam": 100 * MS, "joints": 105 * MS}
    assert res.stats.emitted == 3 and res.stats.dropped == 0


def test_stale_and_missing_streams_drop_the_frame_and_are_counted() -> None:
    cfg = AlignmentConfig(fps=10.0, streams=(StreamSpec("cam", 0.05), StreamSpec("joints", 1.0)), start_ns=0)
    cam = [(0, "a"), (100 * MS, "b"), (400 * MS, "e")]  # gap: frames 200 and 300 ms have a stale camera
    joints = [(t * MS, t) for t in range(20, 420, 20)]  # first joint sample after frame 0
    res = align_streams(cfg, {"cam": cam, "joints": joints})
    assert [f.index for f in res.frames] == [1, 4]
    assert res.stats.dropped == 3
    assert res.stats.dropped_missing == {"cam": 0, "joints": 1}
    assert res.stats.dropped_stale == {"cam": 2, "joints": 0}
    assert "2 stale" in res.stats.summary() and "3 dropped" in res.stats.summary()


def test_nearest_rule_takes_the_closer_sample_and_the_earlier_on_a_tie() -> None:
    cfg = AlignmentConfig.uniform(10.0, ["a", "b"], max_age_s=0.03, rule="nearest", start_ns=100 * MS)
    a = [(80 * MS, "early"), (110 * MS, "late"), (190 * MS, "tie-early"), (210 * MS, "tie-late")]
    b = [(t * MS, t) for t in range(0, 320, 10)]
    res = align_streams(cfg, {"a": a, "b": b})
    by_index = {f.index: f for f in res.frames}
    assert by_index[0].values["a"] == "late"  # |110-100| < |80-100|
    assert by_index[1].values["a"] == "tie-early"
    assert 2 not in by_index  # nearest a-sample to 300 ms is 210 ms: 90 ms > 30 ms max age
    assert res.stats.dropped_stale["a"] == 1


def test_non_monotonic_stamp_is_reported_and_the_aligner_stays_usable() -> None:
    aligner: FrameAligner[int] = FrameAligner(AlignmentConfig.uniform(10.0, ["j"], max_age_s=0.2))
    aligner.push("j", 100 * MS, 1)
    with pytest.raises(NonMonotonicStampError, match=r"stream 'j'.*goes backwards.*by 50\.000 ms") as info:
        aligner.push("j", 50 * MS, 2)
    assert (info.value.stream, info.value.stamp_ns, info.value.previous_ns) == ("j", 50 * MS, 100 * MS)
    with pytest.raises(NonMonotonicStampError, match="repeats"):
        aligner.push("j", 100 * MS, 3)
    aligner.push("j", 200 * MS, 4)
    assert [f.values["j"] for f in aligner.flush()] == [1, 4]
    assert aligner.stats.non_monotonic == {"j": 2}
    with pytest.raises(KeyError, match="unknown stream 'x'"):
        aligner.push("x", 0, 0)


def test_batch_mode_raises_or_collects_non_monotonic_samples() -> None:
    cfg = AlignmentConfig.uniform(10.0, ["j"], max_age_s=0.2)
    samples = {"j": [(0, 0), (100 * MS, 1), (90 * MS, 2), (200 * MS, 3)]}
    with pytest.raises(NonMonotonicStampError):
        align_streams(cfg, samples)
    res = align_streams(cfg, samples, skip_non_monotonic=True)
    assert [f.values["j"] for f in res.frames] == [0, 1, 3]
    assert [(e.stamp_ns, e.previous_ns) for e in res.errors] == [(90 * MS, 100 * MS)]
    with pytest.raises(AlignmentConfigError, match="do not match"):
        align_streams(cfg, {"k": []})


def test_incremental_pop_waits_for_every_stream_and_watermark_unblocks_a_stalled_one() -> None:
    aligner: FrameAligner[str] = FrameAligner(AlignmentConfig.uniform(10.0, ["cam", "joints"], max_age_s=0.15))
    aligner.push("cam", 0, "c0")
    assert aligner.waiting_for() == ("joints",)
    assert aligner.pop_ready() == []
    aligner.push("joints", 0, "j0")
    assert [f.index for f in aligner.pop_ready()] == [0]  # both streams have a sample at >= 0
    aligner.push("joints", 150 * MS, "j1")
    assert aligner.pop_ready() == []  # the camera could still deliver a sample stamped <= 100 ms
    frames = aligner.pop_ready(watermark_ns=100 * MS)  # ... but the watermark says it will not
    assert [(f.index, f.values) for f in frames] == [(1, {"cam": "c0", "joints": "j0"})]
    # the camera stays silent: frame 2 (200 ms) is stale for it (c0 is 200 ms old) once the watermark passes
    aligner.push("joints", 250 * MS, "j2")
    assert aligner.pop_ready(watermark_ns=210 * MS) == []
    assert aligner.stats.dropped_stale == {"cam": 1, "joints": 0}
    # a camera frame stamped 190 ms arrives late: counted, and still used for later frames
    aligner.push("cam", 190 * MS, "c1")
    assert aligner.stats.late_samples["cam"] == 1
    assert [f.values["cam"] for f in aligner.pop_ready(watermark_ns=300 * MS)] == ["c1"]


def test_undecided_counts_the_frames_not_yet_out_up_to_a_stamp() -> None:
    aligner: FrameAligner[str] = FrameAligner(AlignmentConfig.uniform(30.0, ["cam", "joints"], max_age_s=0.1))
    assert aligner.undecided(10**9) == 0  # no grid yet
    aligner.push("cam", 0, "c0")
    aligner.push("joints", 0, "j0")
    # the 30 fps grid from 0: frames at 0, 33.3.., 66.6.., 100 ms; 100 ms itself is on the grid
    assert aligner.undecided(100 * MS) == 4 and aligner.undecided(100 * MS - 1) == 3
    assert aligner.undecided(-1) == 0
    assert len(aligner.pop_ready()) == 1
    assert aligner.undecided(100 * MS) == 3
    aligner.push("cam", 70 * MS, "c1")
    aligner.push("joints", 70 * MS, "j1")
    assert len(aligner.pop_ready()) == 2 and aligner.undecided(100 * MS) == 1 and aligner.undecided(0) == 0


def test_watermark_prunes_while_a_stream_has_not_started() -> None:
    aligner: FrameAligner[int] = FrameAligner(AlignmentConfig.uniform(30.0, ["cam", "joints"], max_age_s=0.1))
    for k in range(1000):
        aligner.push("joints", k * 10 * MS, k)
        aligner.pop_ready(watermark_ns=k * 10 * MS - 50 * MS)
    assert aligner.t0_ns is None and aligner.buffered() <= 10


def test_memory_stays_bounded_when_popping_as_samples_arrive() -> None:
    aligner: FrameAligner[int] = FrameAligner(AlignmentConfig.uniform(30.0, ["a", "b", "c"], max_age_s=0.1))
    emitted = 0
    for k in range(3000):
        t = k * 10 * MS
        for name in ("a", "b", "c"):
            aligner.push(name, t + {"a": 0, "b": 3 * MS, "c": 7 * MS}[name], k)
        emitted += len(aligner.pop_ready())
        assert aligner.buffered() <= 3 * (4 + 2)  # per stream: the samples since the last frame + 2
    assert emitted == aligner.stats.emitted > 850 and aligner.stats.dropped == 0


def test_config_errors_say_what_to_fix() -> None:
    with pytest.raises(AlignmentConfigError, match="fps must be finite and > 0"):
        AlignmentConfig.uniform(0.0, ["a"], 0.1)
    with pytest.raises(AlignmentConfigError, match="repeat"):
        AlignmentConfig.uniform(10.0, ["a", "a"], 0.1)
    with pytest.raises(AlignmentConfigError, match="rule must be one of"):
        AlignmentConfig.uniform(10.0, ["a"], 0.1, rule="linear")
    with pytest.raises(AlignmentConfigError, match="max_age_s"):
        StreamSpec("a", -1.0)
    with pytest.raises(AlignmentConfigError, match="no streams"):
        AlignmentConfig(fps=10.0, streams=())


def _reference(cfg: AlignmentConfig, samples: dict[str, list[tuple[int, int]]]) -> list[tuple[int, dict[str, int]]]:
    """Brute force of the documented rule over complete streams."""
    t0 = cfg.start_ns if cfg.start_ns is not None else max(s[0][0] for s in samples.values())
    end = max(s[-1][0] for s in samples.values())
    out = []
    k = 0
    while (t := cfg.frame_time_ns(t0, k)) <= end:
        values = {}
        for spec in cfg.streams:
            stream = samples[spec.name]
            if cfg.rule == "latest":
                cands = [s for s in stream if s[0] <= t]
                best = cands[-1] if cands else None
            else:
                best = min(stream, key=lambda s: (abs(s[0] - t), s[0])) if stream else None
            if best is None or abs(t - best[0]) > spec.max_age_ns:
                break
            values[spec.name] = best[1]
        else:
            out.append((k, values))
        k += 1
    return out


_stamps = st.lists(st.integers(0, 2000), min_size=1, max_size=40, unique=True).map(sorted)


@settings(max_examples=60, deadline=None)
@given(a=_stamps, b=_stamps, rule=st.sampled_from(["latest", "nearest"]), fps=st.sampled_from([7.0, 30.0, 50.0]),
       seed=st.integers(0, 1000))
def test_incremental_equals_batch_equals_brute_force(a: list[int], b: list[int], rule: str, fps: float,
                                                     seed: int) -> None:
    cfg = AlignmentConfig(fps=fps, streams=(StreamSpec("a", 0.04), StreamSpec("b", 0.1)), rule=rule)
    samples = {"a": [(t * MS, i) for i, t in enumerate(a)], "b": [(t * MS, 100 + i) for i, t in enumerate(b)]}
    expected = _reference(cfg, samples)
    batch = align_streams(cfg, samples)
    assert [(f.index, f.values) for f in batch.frames] == expected
    # live: samples arrive interleaved in a random receive order that keeps each stream in order,
    # with pop_ready (no watermark) at random moments
    rng = random.Random(seed)
    queues = {k: list(v) for k, v in samples.items()}
    aligner: FrameAligner[int] = FrameAligner(cfg)
    got = []
    while any(queues.values()):
        name = rng.choice([k for k, v in queues.items() if v])
        aligner.push(name, *queues[name].pop(0))
        if rng.random() < 0.3:
            got += aligner.pop_ready()
    got += aligner.flush()
    assert [(f.index, f.values) for f in got] == expected
    assert aligner.stats.emitted == len(expected)
