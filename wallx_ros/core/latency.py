"""Rolling latency statistics per pipeline stage (decode, preprocess, inference, postprocess, publish...).

Durations are measured with ``time.monotonic()`` by the caller and recorded here in milliseconds;
``summary()`` gives last / p50 / p99 / max over a window, which diagnostics and the status message show.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["LatencyTracker", "StageSummary"]


@dataclass(frozen=True)
class StageSummary:
    last_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    count: int

    def as_text(self) -> str:
        return f"last {self.last_ms:.2f} / p50 {self.p50_ms:.2f} / p99 {self.p99_ms:.2f} / max {self.max_ms:.2f} ms"


class LatencyTracker:
    """Thread-safe windows of the last ``window`` samples of each named stage."""

    def __init__(self, stages: Iterable[str] = (), window: int = 200) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._samples: dict[str, deque[float]] = {s: deque(maxlen=window) for s in stages}

    def record(self, stage: str, ms: float) -> None:
        with self._lock:
            self._samples.setdefault(stage, deque(maxlen=self._window)).append(float(ms))

    def record_many(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.record(stage, ms)

    def last(self, stage: str) -> float:
        with self._lock:
            values = self._samples.get(stage)
            return values[-1] if values else float("nan")

    def summary(self) -> dict[str, StageSummary]:
        with self._lock:
            snapshot = {k: list(v) for k, v in self._samples.items()}
        out = {}
        for stage, values in snapshot.items():
            if not values:
                continue
            arr = np.asarray(values)
            out[stage] = StageSummary(float(arr[-1]), float(np.percentile(arr, 50)), float(np.percentile(arr, 99)),
                                      float(arr.max()), len(arr))
        return out
