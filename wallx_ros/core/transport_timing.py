"""One-way transport delay per stream, and clock-offset detection between the robot host and this one.

Every message carries the robot's capture time in ``header.stamp`` (robot clock); this host notes its
own receive time. ``receive - stamp`` is the one-way transport delay *plus the offset between the two
clocks*. The two cannot be separated from one direction alone, but some values can only mean one
thing:

* a stamp **in the future** (delay below ``-future_tolerance_s``): the robot's clock is ahead of this
  host's by at least that much. Ages computed from such stamps are too small, so a staleness check
  would pass stale data: this is an error, the consumer must hold.
* **every** stream delayed by more than ``max_plausible_delay_s`` even at its fastest: the robot's
  clock is behind this host's by up to that much, or the link is unusable. Also an error (everything
  looks stale anyway).
* a single stream that is slow while the others are not: that stream's transport or its driver's
  stamping is slow (a warning, e.g. a camera stamping at exposure end).

With synchronised clocks (chrony or PTP on both hosts: the user's job), the delays are the real
transport delays. ``TransportReport.one_way_delay_s`` (median delay of the fastest stream: the path a
small message such as a JointTrajectory takes back) is what a consumer adds to its trajectory timing;
``observation_delay_s`` (median of the slowest stream) is how old an observation is when it is
complete. Only messages received within the last ``horizon_s`` count: a stream that stalls (a lossy
link) must not pin the figures to what it delivered long ago - it is a stale stream, a watchdog's
business. Pure Python, thread-safe (subscription callbacks record from any thread).
"""

from __future__ import annotations

import enum
import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from wallx_ros.core.errors import TransportTimingError
from wallx_ros.core.input_diagnosis import clock_hint

__all__ = [
    "ClockStatus",
    "StreamDelay",
    "TransportDelayMonitor",
    "TransportReport",
    "TransportTimingConfig",
]

_NS = 1_000_000_000
_CLOCK_MISMATCH_S = 60.0  # an offset this large is no drifting clock: sim vs wall time, or a clock never set


class ClockStatus(enum.Enum):
    UNKNOWN = "unknown"          # not enough messages yet
    OK = "ok"                    # delays plausible: clocks in sync as far as can be seen
    AHEAD = "robot_clock_ahead"  # stamps from the future
    BEHIND_OR_SLOW = "robot_clock_behind_or_link_slow"  # every stream implausibly old on arrival


# diagnostic_msgs/DiagnosticStatus levels, without importing ROS
LEVEL_OK, LEVEL_WARN, LEVEL_ERROR = 0, 1, 2


@dataclass(frozen=True)
class TransportTimingConfig:
    """future_tolerance_s: how far a stamp may lie ahead of the receive time (clock sync precision).
    max_plausible_delay_s: a stream whose fastest delay exceeds this is reported (all streams: error).
    window: delays kept per stream. min_samples: recent messages a stream needs to be judged.
    horizon_s: only messages received within this long before "now" count.
    """

    future_tolerance_s: float = 0.005
    max_plausible_delay_s: float = 0.5
    window: int = 200
    min_samples: int = 5
    horizon_s: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.future_tolerance_s) and self.future_tolerance_s >= 0):
            raise TransportTimingError(f"future_tolerance_s must be >= 0 s, got {self.future_tolerance_s}")
        if not (math.isfinite(self.max_plausible_delay_s) and self.max_plausible_delay_s > 0):
            raise TransportTimingError(f"max_plausible_delay_s must be > 0 s, got {self.max_plausible_delay_s}")
        if not (math.isfinite(self.horizon_s) and self.horizon_s > 0):
            raise TransportTimingError(f"horizon_s must be > 0 s, got {self.horizon_s}")
        if self.window < 1 or self.min_samples < 1 or self.min_samples > self.window:
            raise TransportTimingError(f"need 1 <= min_samples <= window, got min_samples {self.min_samples}, "
                                       f"window {self.window}")


@dataclass(frozen=True)
class StreamDelay:
    """Receive time minus header stamp over the window of one stream, in seconds."""

    stream: str
    count: int
    last_s: float
    min_s: float
    p50_s: float
    p95_s: float
    max_s: float

    def as_text(self) -> str:
        return (f"p50 {self.p50_s * 1e3:.1f} / p95 {self.p95_s * 1e3:.1f} / min {self.min_s * 1e3:.1f} / "
                f"max {self.max_s * 1e3:.1f} ms (n={self.count})")


@dataclass(frozen=True)
class TransportReport:
    status: ClockStatus
    level: int
    message: str
    streams: tuple[StreamDelay, ...]
    one_way_delay_s: float | None
    observation_delay_s: float | None
    clock_offset_bound_s: float | None  # AHEAD: robot ahead by at least this; BEHIND_OR_SLOW: behind by at most

    @property
    def clocks_ok(self) -> bool:
        """False when the stamps cannot be trusted against this host's clock (hold the control loop)."""
        return self.status not in (ClockStatus.AHEAD, ClockStatus.BEHIND_OR_SLOW)

    def as_dict(self) -> dict[str, str]:
        """Key/values for a diagnostic_msgs/DiagnosticStatus."""
        out = {"clock_status": self.status.value,
               "one_way_delay_ms": _ms(self.one_way_delay_s),
               "observation_delay_ms": _ms(self.observation_delay_s),
               "clock_offset_bound_ms": _ms(self.clock_offset_bound_s)}
        for s in self.streams:
            out[f"transport_delay.{s.stream}"] = s.as_text()
        return out


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1e3:.2f}"


class TransportDelayMonitor:
    """Keeps ``receive - stamp`` per stream and judges what it says about the link and the clocks."""

    def __init__(self, streams: Iterable[str], config: TransportTimingConfig | None = None) -> None:
        names = tuple(streams)
        if not names or len(set(names)) != len(names):
            raise TransportTimingError(f"stream names must be distinct and non-empty, got {list(names)}")
        self.config = config or TransportTimingConfig()
        self._lock = threading.Lock()
        # per stream: (received_ns, receive - stamp in ns)
        self._delays: dict[str, deque[tuple[int, int]]] = {n: deque(maxlen=self.config.window) for n in names}
        self._latest_received = 0

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._delays)

    def record(self, stream: str, stamp_ns: int, received_ns: int) -> None:
        """Note one message: its header stamp (robot clock) and when it arrived (this host's clock)."""
        if stream not in self._delays:
            raise TransportTimingError(f"unknown stream {stream!r}; known: {list(self._delays)}")
        if stamp_ns <= 0:
            return  # unstamped messages say nothing about the link (and are rejected elsewhere)
        with self._lock:
            self._delays[stream].append((int(received_ns), int(received_ns) - int(stamp_ns)))
            self._latest_received = max(self._latest_received, int(received_ns))

    def reset(self) -> None:
        with self._lock:
            for d in self._delays.values():
                d.clear()

    def stream_delays(self, now_ns: int | None = None) -> tuple[StreamDelay, ...]:
        """Statistics of the messages received within ``horizon_s`` before ``now_ns`` (default: the latest)."""
        with self._lock:
            now = self._latest_received if now_ns is None else int(now_ns)
            since = now - round(self.config.horizon_s * _NS)
            snapshot = {}
            for name, d in self._delays.items():
                recent = [delay for received, delay in d if received >= since]
                if recent:
                    snapshot[name] = np.asarray(recent, dtype=np.float64) / _NS
        return tuple(StreamDelay(n, len(a), float(a[-1]), float(a.min()), float(np.percentile(a, 50)),
                                 float(np.percentile(a, 95)), float(a.max())) for n, a in snapshot.items())

    def report(self, now_ns: int | None = None, sim_time: bool = False) -> TransportReport:
        """What the recent delays say; ``now_ns`` on the receive clock (default: the latest receive time).
        ``sim_time``: the receiving node runs on simulated time (so that an offset of years is explained as a
        use_sim_time mismatch, not as clocks to synchronise)."""
        cfg = self.config
        delays = self.stream_delays(now_ns)
        with self._lock:
            now = self._latest_received if now_ns is None else int(now_ns)
        judged = [s for s in delays if s.count >= cfg.min_samples]
        if not judged:
            return TransportReport(ClockStatus.UNKNOWN, LEVEL_OK,
                                   f"waiting for {cfg.min_samples} messages within {cfg.horizon_s:g} s on a stream",
                                   delays, None, None, None)
        earliest = min(judged, key=lambda s: s.min_s)
        one_way = min(s.p50_s for s in judged)
        observation = max(s.p50_s for s in judged)
        if earliest.min_s < -cfg.future_tolerance_s:
            ahead = -earliest.min_s
            advice = ("Synchronise both hosts' clocks (chrony or PTP) - ages computed from future stamps are wrong"
                      if ahead < _CLOCK_MISMATCH_S else clock_hint(now + round(ahead * _NS), now, sim_time))
            return TransportReport(
                ClockStatus.AHEAD, LEVEL_ERROR,
                f"{earliest.stream} stamps arrive up to {ahead * 1e3:.1f} ms before their own stamp: the robot's "
                f"clock is at least {ahead * 1e3:.1f} ms ahead of this host's. {advice}",
                delays, None, None, ahead)
        fastest = min(s.min_s for s in judged)
        if fastest > cfg.max_plausible_delay_s:
            advice = ("Check the clocks (chronyc tracking / PTP) and the link" if fastest < _CLOCK_MISMATCH_S
                      else clock_hint(now - round(fastest * _NS), now, sim_time))
            return TransportReport(
                ClockStatus.BEHIND_OR_SLOW, LEVEL_ERROR,
                f"every recent message arrives at least {fastest * 1e3:.0f} ms after its stamp "
                f"(> {cfg.max_plausible_delay_s:g} s): the robot's clock is behind this host's by up to "
                f"{fastest:.3f} s, or the link is that slow. {advice}",
                delays, None, None, fastest)
        slow = [s.stream for s in judged if s.min_s > cfg.max_plausible_delay_s]
        if slow:
            return TransportReport(
                ClockStatus.OK, LEVEL_WARN,
                f"{', '.join(slow)}: even the fastest message is older than {cfg.max_plausible_delay_s:g} s on "
                "arrival while other streams are not (slow transport for that stream, or its driver stamps late)",
                delays, one_way, observation, None)
        return TransportReport(ClockStatus.OK, LEVEL_OK,
                               f"one-way transport delay {one_way * 1e3:.1f} ms (fastest stream, median), "
                               f"observation complete after {observation * 1e3:.1f} ms",
                               delays, one_way, observation, None)
