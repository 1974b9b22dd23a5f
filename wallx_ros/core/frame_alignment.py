"""Sample several time-stamped streams at a fixed fps, aligned by header stamp.

One implementation serves the live recorder (incremental: push samples as they arrive, pop the frames
that can no longer change) and the offline rosbag2 converter (batch: :func:`align_streams`).

The rule
--------
Frame ``k`` describes the instant ``t_k = t0 + round(k * 1e9 / fps)`` ns. ``t0`` is
``AlignmentConfig.start_ns`` when given, otherwise the first instant at which every stream has a sample
(the largest of the streams' first stamps). For each stream the frame takes:

* ``rule="latest"`` (default, causal): the newest sample with ``stamp <= t_k``. It is *stale* when
  ``t_k - stamp > max_age`` and *missing* when the stream has no sample at or before ``t_k``.
* ``rule="nearest"``: the sample closest to ``t_k`` (earlier one on a tie) among the newest at or before
  and the first after; stale when ``|stamp - t_k| > max_age``.

The rule is per stream (``StreamSpec.rule``; ``None`` takes ``AlignmentConfig.rule``): cameras are sampled
nearest in time (a camera at the dataset's fps then always gives the image within half a frame period of
the frame, whatever the stamp jitter), joint states and commands as of the frame time (never a sample from
the future). Every chosen sample's distance to its frame, ``|stamp - t_k|``, is kept per stream
(:meth:`FrameAligner.skew`: p50 / max).

A frame with a missing or stale stream is dropped (never filled with an older value) and counted per
stream and reason in :class:`AlignmentStats`; frame indices ``k`` of emitted frames therefore may
have gaps, which callers must not close up (that would shift time): the next emitted frame says how many
frames were dropped right before it and which streams were stale (``AlignedFrame.dropped_before`` /
``gap_streams``); :mod:`wallx_ros.core.frame_gaps` turns that into the split / hold / fail policy. With
``AlignmentConfig.hold_stale`` a stale stream (one that has a sample, only too old) does not drop the frame:
the frame takes that sample, names the stream in ``AlignedFrame.held`` and counts it in ``AlignmentStats.held``.

Finality (incremental use)
--------------------------
Stamps must strictly increase per stream (:class:`NonMonotonicStampError` otherwise; the offending
sample is ignored and the aligner stays usable). So once a stream has a sample with ``stamp >= t_k``, no
later sample can change what frame ``k`` takes from it. ``pop_ready()`` emits every frame for which that
holds for all streams. A live caller whose stream may stall also passes a *watermark*: "every sample
stamped at or before this instant has arrived" (e.g. clock now minus the transport latency allowance).
Then a frame is also final for a stream once ``watermark >= t_k`` (latest) or
``watermark >= t_k + max_age`` (nearest). A sample that arrives after a frame it would have fed was
emitted is counted as late (``late_samples``) and still used for later frames.
"""

# size: one alignment rule in its incremental (recorder) and batch (bag converter) forms, which must stay
#   identical

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from wallx_ros.core.errors import AlignmentConfigError, NonMonotonicStampError

__all__ = [
    "RULES",
    "AlignedFrame",
    "AlignmentConfig",
    "AlignmentResult",
    "AlignmentStats",
    "FrameAligner",
    "SkewSummary",
    "StreamSpec",
    "align_streams",
    "summarize_skew",
]

T = TypeVar("T")
RULES = ("latest", "nearest")
_NS = 1_000_000_000


@dataclass(frozen=True)
class StreamSpec:
    """One input stream: its name, how far (seconds) its sample may be from the frame time, and its rule
    (``"latest"``: as of the frame time, ``"nearest"``: closest in time; ``None``: the config's rule)."""

    name: str
    max_age_s: float
    rule: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise AlignmentConfigError("stream name is empty: give every stream a name (e.g. a camera key)")
        if not (math.isfinite(self.max_age_s) and self.max_age_s >= 0):
            raise AlignmentConfigError(f"stream {self.name!r}: max_age_s must be finite and >= 0, got {self.max_age_s}")
        if self.rule is not None and self.rule not in RULES:
            raise AlignmentConfigError(f"stream {self.name!r}: rule must be one of {RULES}, got {self.rule!r}")

    @property
    def max_age_ns(self) -> int:
        return round(self.max_age_s * _NS)


@dataclass(frozen=True)
class AlignmentConfig:
    """fps of the output frames, the streams (order kept in frames), the default selection rule, optional
    start, and whether a stale stream holds its last sample (``hold_stale``) instead of dropping the frame."""

    fps: float
    streams: tuple[StreamSpec, ...]
    rule: str = "latest"
    start_ns: int | None = None
    hold_stale: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", tuple(self.streams))
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise AlignmentConfigError(f"fps must be finite and > 0, got {self.fps}")
        if not self.streams:
            raise AlignmentConfigError("no streams to align: give at least one StreamSpec")
        names = [s.name for s in self.streams]
        if len(set(names)) != len(names):
            raise AlignmentConfigError(f"stream names repeat: {sorted({n for n in names if names.count(n) > 1})}")
        if self.rule not in RULES:
            raise AlignmentConfigError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.start_ns is not None and self.start_ns < 0:
            raise AlignmentConfigError(f"start_ns must be >= 0, got {self.start_ns}")

    @classmethod
    def uniform(cls, fps: float, names: Sequence[str], max_age_s: float, rule: str = "latest",
                start_ns: int | None = None) -> AlignmentConfig:
        """Every stream with the same ``max_age_s``."""
        return cls(fps=fps, streams=tuple(StreamSpec(n, max_age_s) for n in names), rule=rule, start_ns=start_ns)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams)

    def frame_time_ns(self, t0_ns: int, index: int) -> int:
        """Stamp of frame ``index`` for a grid starting at ``t0_ns``."""
        return t0_ns + round(index * _NS / self.fps)

    def rule_of(self, stream: StreamSpec) -> str:
        """The rule ``stream`` is sampled with."""
        return stream.rule or self.rule


@dataclass(frozen=True)
class AlignedFrame(Generic[T]):
    """Frame ``index`` of the grid, at ``stamp_ns``; per stream the chosen value and that sample's stamp.

    ``held``: streams whose sample is older than their max age (only with ``hold_stale``).
    ``dropped_before``: frames dropped right before this one (since the previous emitted frame, or since
    t0 for the first); ``gap_streams``: the streams that were missing or stale in those frames.
    """

    index: int
    stamp_ns: int
    values: dict[str, T]
    sample_stamps_ns: dict[str, int]
    held: tuple[str, ...] = ()
    dropped_before: int = 0
    gap_streams: tuple[str, ...] = ()

    def age_s(self, stream: str) -> float:
        """How far the stream's sample is from the frame time, in seconds (negative: after it)."""
        return (self.stamp_ns - self.sample_stamps_ns[stream]) / _NS


@dataclass
class AlignmentStats:
    """Counters since the aligner was created. ``dropped_*`` are per stream name."""

    emitted: int = 0
    dropped: int = 0
    dropped_missing: dict[str, int] = field(default_factory=dict)
    dropped_stale: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    late_samples: dict[str, int] = field(default_factory=dict)
    non_monotonic: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)

    def copy(self) -> AlignmentStats:
        return AlignmentStats(self.emitted, self.dropped, dict(self.dropped_missing), dict(self.dropped_stale),
                              dict(self.samples), dict(self.late_samples), dict(self.non_monotonic), dict(self.held))

    def summary(self) -> str:
        """One line for logs, e.g. ``120 frames, 2 dropped (face_view: 2 stale)``."""
        causes = [f"{n}: {c} missing" for n, c in self.dropped_missing.items() if c] + \
                 [f"{n}: {c} stale" for n, c in self.dropped_stale.items() if c]
        text = f"{self.emitted} frames, {self.dropped} dropped"
        if causes:
            text += f" ({', '.join(causes)})"
        holds = [f"{n}: {c}" for n, c in self.held.items() if c]
        if holds:
            text += f", held stale samples ({', '.join(holds)})"
        late = sum(self.late_samples.values())
        bad = sum(self.non_monotonic.values())
        if late:
            text += f", {late} late samples"
        if bad:
            text += f", {bad} non-monotonic samples ignored"
        return text


@dataclass(frozen=True)
class SkewSummary:
    """Distance between the chosen samples of one stream and their frame times: median and maximum (ms)."""

    frames: int
    p50_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return {"frames": self.frames, "p50_ms": round(self.p50_ms, 3), "max_ms": round(self.max_ms, 3)}


def summarize_skew(skew_us: Iterable[int]) -> SkewSummary:
    """Median (lower) and maximum of skews given in microseconds."""
    values = sorted(skew_us)
    if not values:
        return SkewSummary(0, 0.0, 0.0)
    return SkewSummary(len(values), values[(len(values) - 1) // 2] / 1000, values[-1] / 1000)


class _Stream(Generic[T]):
    """Time-ordered samples of one stream, pruned as frames are emitted."""

    def __init__(self, spec: StreamSpec, rule: str) -> None:
        self.rule = rule
        self.max_age_ns = spec.max_age_ns
        self.samples: deque[tuple[int, T]] = deque()
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.skew_us: array[int] = array("q")  # |stamp - frame time| of every chosen sample, microseconds

    def prune_before(self, t_ns: int) -> None:
        """Drop samples that no frame at or after ``t_ns`` can choose (keep the newest at or before it)."""
        s = self.samples
        while len(s) >= 2 and s[1][0] <= t_ns:
            s.popleft()

    def choose(self, t_ns: int) -> tuple[str, tuple[int, T] | None]:
        """("ok", sample) / ("missing", None) / ("stale", sample) for a frame at ``t_ns`` (after prune_before);
        a stale sample is the one the rule picks, too far from ``t_ns``."""
        s = self.samples
        before = s[0] if s and s[0][0] <= t_ns else None
        if self.rule == "latest":
            if before is None:
                return "missing", None
            return ("ok" if t_ns - before[0] <= self.max_age_ns else "stale"), before
        after = None
        if before is None:
            after = s[0] if s else None
        elif len(s) >= 2:
            after = s[1]
        best = before
        if after is not None and (best is None or after[0] - t_ns < t_ns - best[0]):
            best = after
        if best is None:
            return "missing", None
        if abs(best[0] - t_ns) <= self.max_age_ns:
            return "ok", best
        return "stale", before or best  # held, a stale stream repeats its last sample (not a future one)


class FrameAligner(Generic[T]):
    """Incremental fixed-fps alignment: ``push`` samples, ``pop_ready`` final frames, ``flush`` at the end.

    Not thread-safe: call it from one thread (or under the caller's lock).
    """

    def __init__(self, config: AlignmentConfig) -> None:
        self.config = config
        self._streams: dict[str, _Stream[T]] = {s.name: _Stream(s, config.rule_of(s)) for s in config.streams}
        self._t0: int | None = config.start_ns
        self._next = 0  # index of the next frame to decide
        self._dropped_run = 0  # frames dropped since the last emitted one
        self._gap_streams: set[str] = set()
        self._stats = AlignmentStats(
            dropped_missing=dict.fromkeys(config.names, 0), dropped_stale=dict.fromkeys(config.names, 0),
            samples=dict.fromkeys(config.names, 0), late_samples=dict.fromkeys(config.names, 0),
            non_monotonic=dict.fromkeys(config.names, 0), held=dict.fromkeys(config.names, 0),
        )

    # -- state -------------------------------------------------------------------------------------------
    @property
    def stats(self) -> AlignmentStats:
        """A snapshot of the counters."""
        return self._stats.copy()

    @property
    def t0_ns(self) -> int | None:
        """Stamp of frame 0, once known."""
        return self._t0

    @property
    def next_frame_ns(self) -> int | None:
        """Stamp of the next frame to be decided, once ``t0`` is known."""
        return None if self._t0 is None else self.config.frame_time_ns(self._t0, self._next)

    def waiting_for(self) -> tuple[str, ...]:
        """Streams that have not delivered any sample yet (frame 0 cannot be placed without them)."""
        return tuple(n for n, s in self._streams.items() if s.first_ns is None)

    def buffered(self) -> int:
        """Number of samples held (memory bound check)."""
        return sum(len(s.samples) for s in self._streams.values())

    @property
    def trailing_dropped(self) -> int:
        """Frames dropped after the last emitted frame (a stream that stopped, or a gap not closed yet)."""
        return self._dropped_run

    @property
    def trailing_gap_streams(self) -> tuple[str, ...]:
        """The streams missing or stale in those frames."""
        return tuple(sorted(self._gap_streams))

    def skew(self) -> dict[str, SkewSummary]:
        """Per stream: median and maximum of ``|sample stamp - frame time|`` over the emitted frames."""
        return {name: summarize_skew(st.skew_us) for name, st in self._streams.items()}

    def skew_samples(self) -> dict[str, list[int]]:
        """Per stream, ``|sample stamp - frame time|`` of every emitted frame in microseconds (to combine runs)."""
        return {name: list(st.skew_us) for name, st in self._streams.items()}

    # -- input -------------------------------------------------------------------------------------------
    def push(self, stream: str, stamp_ns: int, value: T) -> None:
        """Add one sample. Raises KeyError for an unknown stream, NonMonotonicStampError (sample ignored)."""
        try:
            st = self._streams[stream]
        except KeyError:
            raise KeyError(f"unknown stream {stream!r}; configured: {list(self._streams)}") from None
        stamp_ns = int(stamp_ns)
        if st.last_ns is not None and stamp_ns <= st.last_ns:
            self._stats.non_monotonic[stream] += 1
            raise NonMonotonicStampError(stream, stamp_ns, st.last_ns)
        if self._t0 is not None and self._next > 0 and stamp_ns <= self.config.frame_time_ns(self._t0, self._next - 1):
            self._stats.late_samples[stream] += 1  # a frame it would have fed is already out
        st.samples.append((stamp_ns, value))
        if st.first_ns is None:
            st.first_ns = stamp_ns
        st.last_ns = stamp_ns
        self._stats.samples[stream] += 1
        if self._t0 is None and not self.waiting_for():
            self._t0 = max(s.first_ns for s in self._streams.values() if s.first_ns is not None)

    # -- output ------------------------------------------------------------------------------------------
    def pop_ready(self, watermark_ns: int | None = None) -> list[AlignedFrame[T]]:
        """Frames that no future sample can change (see module doc); ``watermark_ns`` is optional."""
        if self._t0 is None and watermark_ns is not None:
            # t0 = the slowest stream's first stamp, which lies after the watermark: older samples of the
            # other streams can never be chosen, so they need not pile up while a stream is missing.
            for st in self._streams.values():
                st.prune_before(watermark_ns)
        return self._emit(lambda t: self._is_final(t, watermark_ns))

    def flush(self, end_ns: int | None = None) -> list[AlignedFrame[T]]:
        """End of input: decide every frame with stamp ``<= end_ns`` (default: the newest sample's stamp)."""
        if end_ns is None:
            lasts = [s.last_ns for s in self._streams.values() if s.last_ns is not None]
            if not lasts:
                return []
            end_ns = max(lasts)
        limit = end_ns
        return self._emit(lambda t: t <= limit)

    def undecided(self, end_ns: int) -> int:
        """Number of frames with stamp ``<= end_ns`` not yet emitted or dropped (e.g. left when input ends)."""
        if self._t0 is None:
            return 0
        count = 0
        while self.config.frame_time_ns(self._t0, self._next + count) <= end_ns:
            count += 1
        return count

    def _is_final(self, t_ns: int, watermark_ns: int | None) -> bool:
        for st in self._streams.values():
            if st.last_ns is not None and st.last_ns >= t_ns:
                continue
            if watermark_ns is not None and watermark_ns >= t_ns + (st.max_age_ns if st.rule == "nearest" else 0):
                continue
            return False
        return True

    def _emit(self, final: Callable[[int], bool]) -> list[AlignedFrame[T]]:
        out: list[AlignedFrame[T]] = []
        if self._t0 is None:
            return out
        hold = self.config.hold_stale
        while True:
            t = self.config.frame_time_ns(self._t0, self._next)
            if not final(t):
                break
            values: dict[str, T] = {}
            stamps: dict[str, int] = {}
            held: list[str] = []
            bad: list[tuple[str, str]] = []
            for name, st in self._streams.items():
                st.prune_before(t)
                status, sample = st.choose(t)
                if sample is None or (status == "stale" and not hold):
                    bad.append((name, status))
                    continue
                if status == "stale":
                    held.append(name)
                stamps[name], values[name] = sample
            if not bad:
                for name in held:
                    self._stats.held[name] += 1
                for name, st in self._streams.items():
                    st.skew_us.append(abs(t - stamps[name]) // 1000)
                out.append(AlignedFrame(self._next, t, values, stamps, tuple(held), self._dropped_run,
                                        tuple(sorted(self._gap_streams))))
                self._stats.emitted += 1
                self._dropped_run = 0
                self._gap_streams.clear()
            else:
                for name, status in bad:
                    counter = self._stats.dropped_missing if status == "missing" else self._stats.dropped_stale
                    counter[name] += 1
                    self._gap_streams.add(name)
                self._stats.dropped += 1
                self._dropped_run += 1
            self._next += 1
        return out


@dataclass(frozen=True)
class AlignmentResult(Generic[T]):
    """What :func:`align_streams` produced."""

    frames: list[AlignedFrame[T]]
    stats: AlignmentStats
    errors: list[NonMonotonicStampError]


def align_streams(config: AlignmentConfig, samples: Mapping[str, Iterable[tuple[int, T]]], *,
                  skip_non_monotonic: bool = False, end_ns: int | None = None) -> AlignmentResult[T]:
    """Batch alignment of whole streams (e.g. read from a bag); same rule and counters as the live path.

    Holds every sample in memory; for long recordings feed a :class:`FrameAligner` in stamp order and
    call ``pop_ready()`` as you go (memory then stays at a few samples per stream).

    Raises NonMonotonicStampError at the first stamp that does not increase, unless
    ``skip_non_monotonic``: then such samples are ignored and returned in ``errors`` for the report.
    """
    missing = [n for n in config.names if n not in samples]
    extra = [n for n in samples if n not in config.names]
    if missing or extra:
        raise AlignmentConfigError(f"streams given {sorted(samples)} do not match the config's {list(config.names)}")
    aligner: FrameAligner[T] = FrameAligner(config)
    errors: list[NonMonotonicStampError] = []
    for name in config.names:
        for stamp_ns, value in samples[name]:
            try:
                aligner.push(name, stamp_ns, value)
            except NonMonotonicStampError as err:
                if not skip_non_monotonic:
                    raise
                errors.append(err)
    frames = aligner.flush(end_ns)
    return AlignmentResult(frames, aligner.stats, errors)
