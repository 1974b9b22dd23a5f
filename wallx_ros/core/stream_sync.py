"""Latest-of-each-stream buffering and header-stamp synchronisation, with staleness reporting.

ROS-free and thread-safe: subscription callbacks (any thread) ``put`` samples, a consumer asks
``StreamSync.latest_synced(now_ns)`` for one sample per stream. The policy node and the recorder
use the same classes (through ``wallx_ros.nodes.observation_inputs``).

Rules (what a ROS user expects from a message filter, without one):

* an observation is the LATEST sample of each stream, provided their header stamps lie within
  ``sync_tolerance_s`` of each other (max stamp - min stamp);
* a stream whose latest sample is older than ``max_age_s`` (now - stamp) blocks the observation and
  is reported as stale; a stream that never delivered is reported as missing;
* a stream whose latest message was bad (``put_error``: wrong encoding, missing joint, NaN, ...) is
  blocked with that reason until a good message arrives - a bad message never lets an older good one
  be reused;
* per stream: receive rate, age, transport delay (receive time - header stamp, on the same clock),
  counts of good and bad messages.

``nearest(stamp_ns)`` gives the buffered sample closest to a stamp (history ``depth`` > 1), for
consumers that align streams to a fixed frame clock (the recorder).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from wallx_ros.core.errors import StreamSyncError

__all__ = ["Sample", "StreamBuffer", "StreamStats", "StreamSync", "SyncResult"]

T = TypeVar("T")
_NS = 1_000_000_000


@dataclass(frozen=True)
class Sample(Generic[T]):
    """One message's payload with its header stamp and the (same-clock) time it was received."""

    value: T
    stamp_ns: int
    received_ns: int


@dataclass(frozen=True)
class StreamStats:
    """What diagnostics show for one stream."""

    name: str
    received: int
    errors: int
    rate_hz: float
    age_s: float | None
    transport_delay_s: float | None
    last_error: str

    def as_dict(self) -> dict[str, str]:
        age = "never" if self.age_s is None else f"{self.age_s:.3f}"
        delay = "n/a" if self.transport_delay_s is None else f"{self.transport_delay_s * 1e3:.2f}"
        return {"rate_hz": f"{self.rate_hz:.1f}", "age_s": age, "transport_delay_ms": delay,
                "received": str(self.received), "errors": str(self.errors), "last_error": self.last_error}


class StreamBuffer(Generic[T]):
    """The last ``depth`` good samples of one stream, its error state and receive statistics."""

    def __init__(self, name: str, depth: int = 1, rate_window_s: float = 2.0) -> None:
        if depth < 1:
            raise StreamSyncError(f"stream {name!r}: depth must be >= 1, got {depth}")
        self.name = name
        self._lock = threading.Lock()
        self._samples: deque[Sample[T]] = deque(maxlen=depth)
        self._arrivals: deque[int] = deque()
        self._rate_window_ns = round(rate_window_s * _NS)
        self._first_arrival: int | None = None
        self._error = ""
        self._received = 0
        self._errors = 0
        self._sequence = 0

    def put(self, value: T, stamp_ns: int, received_ns: int) -> None:
        """Store a good sample (clears a previous error)."""
        with self._lock:
            self._samples.append(Sample(value, int(stamp_ns), int(received_ns)))
            self._arrive(int(received_ns))
            self._error = ""
            self._received += 1
            self._sequence += 1

    def put_error(self, reason: str, received_ns: int) -> None:
        """Record a bad message: the stream is blocked with ``reason`` until the next good sample."""
        with self._lock:
            self._error = reason
            self._errors += 1
            self._arrive(int(received_ns))
            self._samples.clear()
            self._sequence += 1

    def _arrive(self, received_ns: int) -> None:
        if self._first_arrival is None:
            self._first_arrival = received_ns
        self._arrivals.append(received_ns)
        while self._arrivals and self._arrivals[0] < received_ns - self._rate_window_ns:
            self._arrivals.popleft()

    def latest(self) -> Sample[T] | None:
        with self._lock:
            return self._samples[-1] if self._samples and not self._error else None

    def nearest(self, stamp_ns: int) -> Sample[T] | None:
        """The buffered good sample whose stamp is closest to ``stamp_ns`` (ties: the newer)."""
        with self._lock:
            if not self._samples or self._error:
                return None
            return min(reversed(self._samples), key=lambda s: abs(s.stamp_ns - stamp_ns))

    @property
    def sequence(self) -> int:
        """Increments with every message (good or bad): lets a consumer see whether anything new came."""
        with self._lock:
            return self._sequence

    @property
    def error(self) -> str:
        with self._lock:
            return self._error

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()
            self._error = ""

    def stats(self, now_ns: int) -> StreamStats:
        with self._lock:
            latest = self._samples[-1] if self._samples else None
            arrivals = list(self._arrivals)
            first = self._first_arrival
            received, errors, error = self._received, self._errors, self._error
        rate = 0.0
        if first is not None:
            recent = [t for t in arrivals if t > now_ns - self._rate_window_ns]
            span = min(self._rate_window_ns, now_ns - first)
            rate = len(recent) * _NS / span if span > 0 else 0.0
        age = None if latest is None else (now_ns - latest.stamp_ns) / _NS
        delay = None if latest is None else (latest.received_ns - latest.stamp_ns) / _NS
        return StreamStats(self.name, received, errors, rate, age, delay, error)


@dataclass(frozen=True)
class SyncResult(Generic[T]):
    """Either ``samples`` (one per stream, synced) or the reasons why not.

    blocked: every reason (stream problems and a stamp spread beyond the tolerance).
    stream_problems: the per-stream reasons only (missing, stale, bad message) - what a watchdog acts on.
    stale: names of the streams that are stale or bad.
    """

    samples: Mapping[str, Sample[T]] | None
    blocked: tuple[str, ...]
    stream_problems: tuple[str, ...]
    stale: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.samples is not None

    @property
    def stamp_ns(self) -> int:
        """The observation's time: the newest stamp of the set (all lie within the tolerance of it)."""
        if self.samples is None:
            raise StreamSyncError("no synced set: check .ok first")
        return max(s.stamp_ns for s in self.samples.values())

    @property
    def oldest_stamp_ns(self) -> int:
        if self.samples is None:
            raise StreamSyncError("no synced set: check .ok first")
        return min(s.stamp_ns for s in self.samples.values())

    def reason(self) -> str:
        return "; ".join(self.blocked)


class StreamSync(Generic[T]):
    """Named streams that together make one observation."""

    def __init__(self, names: Iterable[str], sync_tolerance_s: float, max_age_s: float, depth: int = 1) -> None:
        names = tuple(names)
        if not names or len(set(names)) != len(names):
            raise StreamSyncError(f"stream names must be distinct and non-empty, got {list(names)}")
        if not sync_tolerance_s > 0:
            raise StreamSyncError(f"sync_tolerance_s must be > 0, got {sync_tolerance_s}")
        if not max_age_s > 0:
            raise StreamSyncError(f"max_age_s must be > 0, got {max_age_s}")
        self.sync_tolerance_ns = round(sync_tolerance_s * _NS)
        self.max_age_ns = round(max_age_s * _NS)
        self.streams: dict[str, StreamBuffer[T]] = {n: StreamBuffer(n, depth) for n in names}

    def __getitem__(self, name: str) -> StreamBuffer[T]:
        return self.streams[name]

    def stale_streams(self, now_ns: int) -> tuple[str, ...]:
        """Streams that delivered before but whose latest sample is now older than max_age (or bad)."""
        out = []
        for name, buf in self.streams.items():
            latest = buf.latest()
            if buf.error or (latest is not None and now_ns - latest.stamp_ns > self.max_age_ns):
                out.append(name)
        return tuple(out)

    def latest_synced(self, now_ns: int) -> SyncResult[T]:
        """The latest sample of every stream if all are present, fresh and within the tolerance."""
        blocked: list[str] = []
        stale: list[str] = []
        samples: dict[str, Sample[T]] = {}
        for name, buf in self.streams.items():
            err = buf.error
            latest = buf.latest()
            if err:
                blocked.append(f"{name}: {err}")
                stale.append(name)
            elif latest is None:
                blocked.append(f"{name}: no message yet")
            elif now_ns - latest.stamp_ns > self.max_age_ns:
                blocked.append(f"{name}: stale ({(now_ns - latest.stamp_ns) / _NS:.3f} s old > max_age "
                               f"{self.max_age_ns / _NS:.3f} s)")
                stale.append(name)
            else:
                samples[name] = latest
        stream_problems = tuple(blocked)
        if not blocked:
            stamps = [s.stamp_ns for s in samples.values()]
            spread = max(stamps) - min(stamps)
            if spread > self.sync_tolerance_ns:
                newest = max(samples, key=lambda n: samples[n].stamp_ns)
                oldest = min(samples, key=lambda n: samples[n].stamp_ns)
                blocked.append(f"stamps of {oldest} and {newest} differ by {spread / 1e6:.1f} ms > sync_tolerance "
                               f"{self.sync_tolerance_ns / 1e6:.1f} ms")
        if blocked:
            return SyncResult(None, tuple(blocked), stream_problems, tuple(stale))
        return SyncResult(samples, (), (), ())

    def stats(self, now_ns: int) -> list[StreamStats]:
        return [buf.stats(now_ns) for buf in self.streams.values()]

    def clear(self) -> None:
        for buf in self.streams.values():
            buf.clear()
