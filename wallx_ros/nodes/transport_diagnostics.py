"""``core.transport_timing`` report -> ``diagnostic_msgs/DiagnosticStatus`` (the "transport" entry of /diagnostics)."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from wallx_ros.core.transport_timing import LEVEL_ERROR, LEVEL_OK, LEVEL_WARN, TransportReport

__all__ = ["transport_status"]

_LEVELS = {LEVEL_OK: DiagnosticStatus.OK, LEVEL_WARN: DiagnosticStatus.WARN, LEVEL_ERROR: DiagnosticStatus.ERROR}


def transport_status(report: TransportReport, name: str, hardware_id: str = "wallx_policy") -> DiagnosticStatus:
    """One DiagnosticStatus: clock status, one-way delay, per-stream delay statistics, and what to do."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, message=report.message)
    status.level = _LEVELS[report.level]
    status.values = [KeyValue(key=k, value=v) for k, v in report.as_dict().items()]
    return status
