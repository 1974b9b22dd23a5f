"""``core.transport_timing`` report -> ``diagnostic_msgs/DiagnosticStatus`` (the "transport" entry of /diagnostics),
and the cached view of it that the policy node reads (one-way delay, clock problems)."""

from __future__ import annotations

import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from wallx_ros.core.transport_timing import LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, TransportReport

__all__ = ["TransportView", "transport_status"]

_LEVELS = {LEVEL_OK: DiagnosticStatus.OK, LEVEL_WARN: DiagnosticStatus.WARN, LEVEL_ERROR: DiagnosticStatus.ERROR}


def transport_status(report: TransportReport, name: str, hardware_id: str = "wallx_policy") -> DiagnosticStatus:
    """One DiagnosticStatus: clock status, one-way delay, per-stream delay statistics, and what to do."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, message=report.message)
    status.level = _LEVELS[report.level]
    status.values = [KeyValue(key=k, value=v) for k, v in report.as_dict().items()]
    return status


class TransportView:
    """The inputs' transport report, recomputed at most every 0.1 s (percentiles over windows), and what the
    policy node reads from it. Simulated time has one clock and no network: no delay, no clock problem there
    (sensor stamps may even run ahead of the last /clock message)."""

    def __init__(self, report: Callable[[int, bool], TransportReport], now_ns: Callable[[], int],
                 sim_time: Callable[[], bool]) -> None:
        self._report = report
        self._now_ns = now_ns
        self._sim_time = sim_time
        self._cache: tuple[float, TransportReport] | None = None

    def report(self) -> TransportReport:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > 0.1:
            self._cache = (now, self._report(self._now_ns(), self._sim_time()))
        return self._cache[1]

    def one_way_delay_s(self) -> float:
        """Measured one-way transport delay robot -> this host (fastest stream, median); 0 until known."""
        return 0.0 if self._sim_time() else (self.report().one_way_delay_s or 0.0)

    def clock_problems(self) -> tuple[str, ...]:
        """A robot clock ahead of this host's (future stamps) or far behind makes every age wrong: hold."""
        if self._sim_time():
            return ()
        report = self.report()
        return () if report.clocks_ok else (f"clocks: {report.message}",)
