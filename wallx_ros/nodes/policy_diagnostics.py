"""What the policy node says about itself besides its status: /diagnostics entries and the waiting log.

``diagnostic_array`` assembles the node's /diagnostics message: control (the status fields), inputs (every
stream's rate, age, delay, errors and topic), transport (clock offset and one-way delay between hosts),
latency per stage, the chunk-switch figures and, on CUDA, GPU memory. ``WaitingLog`` decides when an active
node that publishes nothing says why (which input is missing or stale, and the likely fix).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from wallx_ros.core.input_diagnosis import StreamView, explain_waiting
from wallx_ros.core.latency import LatencyTracker
from wallx_ros.core.policy_control import ControlMode, PolicyControl
from wallx_ros.core.stream_sync import StreamStats, SyncResult
from wallx_ros.core.transport_timing import TransportReport
from wallx_ros.nodes.policy_status import PolicyStatusPublisher, StatusFields
from wallx_ros.nodes.ros_conversions import time_from_ns
from wallx_ros.nodes.transport_diagnostics import transport_status

__all__ = ["WaitingLog", "diagnostic_array", "gpu_status", "inputs_status"]


def inputs_status(name: str, stats: Sequence[StreamStats], topics: dict[str, str], max_age_s: float | None
                  ) -> DiagnosticStatus:
    """Every input stream's figures; WARN naming the streams that are stale, missing or bad."""
    inputs = DiagnosticStatus(name=name, hardware_id="wallx_policy")
    bad = []
    for s in stats:
        inputs.values += [KeyValue(key=f"{s.name}.{k}", value=v) for k, v in s.as_dict().items()]
        inputs.values.append(KeyValue(key=f"{s.name}.topic", value=topics.get(s.name, "")))
        if s.last_error or s.age_s is None or (max_age_s is not None and s.age_s > max_age_s):
            bad.append(s.name)
    inputs.level = DiagnosticStatus.WARN if bad else DiagnosticStatus.OK
    inputs.message = f"stale, missing or bad: {bad}" if bad else "all streams fresh"
    return inputs


def gpu_status(name: str, device: str) -> DiagnosticStatus | None:
    """GPU memory of the model's device (CUDA only; None elsewhere)."""
    if not device.startswith("cuda"):
        return None
    import torch

    gib = 1024.0 ** 3
    memory = {"allocated_gib": torch.cuda.memory_allocated(device),
              "reserved_gib": torch.cuda.memory_reserved(device),
              "max_allocated_gib": torch.cuda.max_memory_allocated(device)}
    return DiagnosticStatus(name=f"{name}: gpu", hardware_id=device, level=DiagnosticStatus.OK,
                            message=torch.cuda.get_device_name(device),
                            values=[KeyValue(key=k, value=f"{v / gib:.3f}") for k, v in memory.items()])


def diagnostic_array(name: str, st: StatusFields, status: PolicyStatusPublisher,
                     inputs: tuple[Sequence[StreamStats], dict[str, str], float | None] | None,
                     transport: TransportReport | None, latency: LatencyTracker, smoothness: LatencyTracker,
                     device: str) -> DiagnosticArray:
    """The node's /diagnostics message. ``inputs``: (stream stats, topics, max_age_s) once configured."""
    arr = DiagnosticArray()
    arr.header.stamp = time_from_ns(st.stamp_ns)
    arr.status.append(status.as_diagnostic(st, f"{name}: control"))
    if inputs is not None:
        arr.status.append(inputs_status(f"{name}: inputs", *inputs))
        if transport is not None:
            arr.status.append(transport_status(transport, f"{name}: transport"))
    lat = DiagnosticStatus(name=f"{name}: latency", hardware_id="wallx_policy", level=DiagnosticStatus.OK,
                           message="per stage: last / p50 / p99 / max (ms)")
    for stage, summary in latency.summary().items():
        lat.values.append(KeyValue(key=stage, value=summary.as_text()))
    arr.status.append(lat)
    switches = DiagnosticStatus(name=f"{name}: chunk switches", hardware_id="wallx_policy",
                                level=DiagnosticStatus.OK,
                                message="as the controller samples them: last / p50 / p99 / max (joint units)")
    for figure, summary in smoothness.summary().items():
        switches.values.append(KeyValue(key=figure, value=f"{summary.last_ms:.4g} / {summary.p50_ms:.4g} / "
                                                          f"{summary.p99_ms:.4g} / {summary.max_ms:.4g}"))
    arr.status.append(switches)
    gpu = gpu_status(name, device)
    if gpu is not None:
        arr.status.append(gpu)
    return arr


class WaitingLog:
    """Active but not publishing: every ``period_s``, one line saying which input is missing or stale and the
    likely fix (core.input_diagnosis); paused / e-stopped say how to go on. Timed on the steady clock: it also
    speaks when simulated time stands still (no /clock)."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._last = 0.0

    def line(self, control: PolicyControl, synced: SyncResult[object], views: Callable[[], list[StreamView]],
             now_ns: int, sim_time: bool, max_age_s: float, clock_tolerance_s: float, period_s: float,
             clock_problems: Callable[[], Sequence[str]]) -> str:
        """The line to log now ('' = nothing to say yet)."""
        mono = time.monotonic()
        if control.mode in (ControlMode.RUNNING, ControlMode.INACTIVE) or period_s <= 0:
            self._since = None
            return ""
        if self._since is None:
            self._since = self._last = mono
            return ""
        if mono - self._last < period_s:
            return ""
        reasons: list[str] = []
        if control.mode in (ControlMode.PAUSED, ControlMode.ESTOPPED):
            reasons.append(f"{control.mode.value} ({control.reason}): "
                           + ("release with ~/estop data false, then ~/resume" if control.mode is ControlMode.ESTOPPED
                              else "call ~/resume"))
        elif not synced.ok:
            reasons = explain_waiting(views(), now_ns, sim_time, max_age_s, clock_tolerance_s)
            reasons = reasons or [r for r in synced.blocked if r not in synced.stream_problems]
        reasons += list(clock_problems())
        if not reasons:
            return ""
        self._last = mono
        return f"active but not publishing for {mono - self._since:.0f} s: " + " | ".join(reasons)
