"""Online estimate of the inference delay: from an observation's stamp to the moment its chunk takes over.

RTC freezes the rows of the running plan that execute while the model runs; how many depends on this
delay, which varies (model, load, network). The estimate is a high percentile (default p90) of the last
``window`` measurements: a longer delay shows up after a few chunks (a tenth of the window), a shorter one
only once most of the window has seen it, so the estimate errs on the side of freezing a row too many (a
frozen row that is still the running plan is harmless; an unfrozen row that executed is a jump).
Thread-safe: chunks are measured in the control callback group, the estimate is read at submission.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np

__all__ = ["InferenceDelayEstimator"]


class InferenceDelayEstimator:
    """Percentile of the last ``window`` measured delays (seconds)."""

    def __init__(self, percentile: float = 90.0, window: int = 50) -> None:
        if not 0.0 <= percentile <= 100.0 or window < 1:
            raise ValueError(f"need a percentile within [0, 100] and window >= 1, got {percentile}, {window}")
        self.percentile = percentile
        self._samples: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, delay_s: float) -> None:
        """One measured delay; non-finite or negative values (clock jumps) are ignored."""
        if math.isfinite(delay_s) and delay_s >= 0:
            with self._lock:
                self._samples.append(float(delay_s))

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._samples)

    def estimate_s(self) -> float | None:
        """The delay percentile (s), None before the first measurement."""
        with self._lock:
            samples = list(self._samples)
        if not samples:
            return None
        return float(np.percentile(np.asarray(samples), self.percentile))

    def steps(self, dt_s: float) -> int:
        """The estimate in whole chunk steps of ``dt_s``: rows stamped at ``(i + 1) * dt_s`` after the observation
        that lie at or before the delay (0 before the first measurement)."""
        estimate = self.estimate_s()
        if estimate is None or not dt_s > 0:
            return 0
        return math.floor(estimate / dt_s + 1e-9)
