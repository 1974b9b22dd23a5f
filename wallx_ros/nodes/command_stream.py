"""A thread that calls ``tick(deadline_ns)`` at a fixed rate on absolute deadlines, for per-step streaming.

The executor's timers are dispatched by Python code that competes with camera callbacks and the model
for the GIL and the CPU; a dedicated thread sleeping to absolute ``time.monotonic_ns`` deadlines (no drift:
deadline k is start + k * period) keeps a 100 Hz command stream regular while the model runs. With
``priority`` > 0 the thread asks for SCHED_FIFO at that priority (needs CAP_SYS_NICE or an rtprio limit;
if refused, it says so through ``on_warning`` and runs at normal priority).

Used by the policy node for output_mode joint_state / array on the wall clock; under ``use_sim_time``
the node streams from a timer on the ROS clock instead (simulated time does not pass at wall-clock rate).
No ROS imports: publishing happens in ``tick`` (rclpy publishers are thread-safe).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

__all__ = ["CommandStreamer"]


class CommandStreamer:
    """Runs ``tick(deadline_ns)`` every ``period_s``; missed deadlines are skipped and counted, never bunched."""

    def __init__(self, tick: Callable[[int], None], period_s: float, priority: int = 0, name: str = "wallx-stream",
                 on_warning: Callable[[str], None] | None = None) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        if not 0 <= priority <= 99:
            raise ValueError(f"priority must be within 0..99 (0 = normal scheduling), got {priority}")
        self._tick = tick
        self.period_ns = round(period_s * 1e9)
        self._priority = priority
        self._warn = on_warning or (lambda message: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.ticks = 0
        self.missed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        if self._priority:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self._priority))
            except (PermissionError, OSError, AttributeError) as err:
                self._warn(f"stream thread: SCHED_FIFO priority {self._priority} refused ({err}); "
                           "running at normal priority (grant CAP_SYS_NICE or an rtprio limit)")
        deadline = time.monotonic_ns()
        while not self._stop.is_set():
            deadline += self.period_ns
            delay = deadline - time.monotonic_ns()
            if delay > 0:
                if self._stop.wait(delay / 1e9):
                    return
            elif -delay > self.period_ns:  # more than a period late: skip the missed ticks
                skipped = -delay // self.period_ns
                self.missed += int(skipped)
                deadline += int(skipped) * self.period_ns
            try:
                self._tick(deadline)
            except Exception as err:  # a failing tick must not kill the stream silently
                self._warn(f"stream tick failed: {type(err).__name__}: {err}")
            self.ticks += 1
