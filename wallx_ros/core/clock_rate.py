"""How fast the node's clock runs against the wall clock: durations on simulated time in wall seconds.

On ``use_sim_time`` a simulator may run slower or faster than real time, or stand still (paused). Work the
model does in wall time (an answer in words) must fit a gap measured on the node's clock (until the next
action observation is due): ``ClockRate`` measures simulated seconds per wall second over intervals of at
least ``interval_s`` and converts. On wall time the rate is 1.
"""

from __future__ import annotations

import math

__all__ = ["ClockRate"]


class ClockRate:
    """Simulated seconds per wall second, measured from (monotonic time, clock stamp) samples."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.rate = 1.0  # until measured: real time
        self._ref: tuple[float, int] | None = None

    def update(self, monotonic_s: float, clock_ns: int) -> float:
        """Take a sample; the rate changes once ``interval_s`` of wall time passed since the reference sample. A
        clock that went back (a reset) restarts the measurement."""
        if self._ref is None:
            self._ref = (monotonic_s, clock_ns)
            return self.rate
        ref_s, ref_ns = self._ref
        elapsed_s = monotonic_s - ref_s
        if clock_ns < ref_ns:
            self._ref = (monotonic_s, clock_ns)
        elif elapsed_s >= self.interval_s:
            self.rate = (clock_ns - ref_ns) / 1e9 / elapsed_s
            self._ref = (monotonic_s, clock_ns)
        return self.rate

    def wall_s(self, clock_s: float) -> float:
        """A duration on the node's clock in wall seconds (``inf`` while the clock stands still)."""
        if math.isinf(clock_s) or self.rate <= 1e-9:
            return math.inf
        return clock_s / self.rate
