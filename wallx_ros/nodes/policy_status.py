"""The policy node's status (fields of msg/PolicyStatus.msg) as standard and typed messages, and RViz markers.

``~/status`` is always a ``diagnostic_msgs/DiagnosticStatus`` whose key/values are the PolicyStatus
fields by name: it works wherever rclpy does (pip venv or colcon). When the interfaces package
``wallx_ros_msgs`` (generated from ``msg/`` by ``wallx-ros-interfaces-package``) is importable, the same
fields also go out typed as ``wallx_ros_msgs/PolicyStatus`` on ``~/policy_status``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point as PointMsg
from rclpy.node import Node
from visualization_msgs.msg import Marker, MarkerArray

from wallx_ros.core.chunk_execution import Plan
from wallx_ros.core.policy_control import ChunkOutcome, ControlMode, PolicyControl
from wallx_ros.core.stream_sync import StreamStats
from wallx_ros.core.urdf import UrdfModel
from wallx_ros.nodes.ros_conversions import time_from_ns

__all__ = ["STATUS_FIELDS", "SWITCH_FIGURES", "PolicyStatusPublisher", "StatusFields", "path_markers"]

_LATENCY_FIELDS = ("input_age", "decode", "preprocess", "inference", "postprocess", "handoff", "publish", "model",
                   "end_to_end", "overhead")
STATUS_FIELDS = ("state", "state_since", "hold_reason", "last_problem", "instruction_problem",
                 "observation_stamp",
                 *(f"{s}_ms" for s in _LATENCY_FIELDS), "transport_delay_ms", "chunk_boundary_jump",
                 "published_boundary_jump", "skipped_points", "switch_position_jump", "switch_velocity_jump",
                 "switch_peak_acceleration", "rtc_delay_steps", "rtc_prefix_error", "chunks_published",
                 "chunks_rejected", "observations_dropped")
# the chunk-switch figures (joint units) the node keeps rolling windows of, next to the latency stages
SWITCH_FIGURES = ("switch_position_jump", "switch_velocity_jump", "switch_peak_acceleration", "rtc_prefix_error")
_LEVELS = {"running": DiagnosticStatus.OK, "waiting": DiagnosticStatus.OK, "inactive": DiagnosticStatus.OK,
           "holding": DiagnosticStatus.WARN, "paused": DiagnosticStatus.WARN, "estopped": DiagnosticStatus.ERROR,
           "unconfigured": DiagnosticStatus.WARN}


def _worse(a: bytes, b: bytes) -> bytes:
    """The more severe of two DiagnosticStatus levels (rclpy gives them as single bytes)."""
    return a if a[0] >= b[0] else b


@dataclass
class StatusFields:
    """Mutable status record (updated in the node's control callback group)."""

    stamp_ns: int = 0
    state: str = "unconfigured"
    state_since_ns: int = 0
    hold_reason: str = ""
    last_problem: str = ""
    instruction_problem: str = ""
    observation_stamp_ns: int = 0
    last_timings: dict[str, float] = field(default_factory=dict)
    transport_delay_ms: float = float("nan")
    chunk_boundary_jump: float = 0.0
    published_boundary_jump: float = 0.0
    skipped_points: int = 0
    switch_position_jump: float = float("nan")
    switch_velocity_jump: float = float("nan")
    switch_peak_acceleration: float = float("nan")
    rtc_delay_steps: int = -1
    rtc_prefix_error: float = float("nan")
    chunks_published: int = 0
    chunks_rejected: int = 0
    observations_dropped: int = 0

    def refresh(self, now_ns: int, control: PolicyControl | None, configure_error: str, activate_error: str,
                dropped: int | None, stats: Sequence[StreamStats] | None) -> StatusFields:
        """Bring the state fields up to date before publishing (returns self)."""
        self.stamp_ns = now_ns
        if control is None:
            self.state, self.hold_reason = "unconfigured", configure_error or "not configured"
        else:
            self.state, self.hold_reason = control.mode.value, control.reason
            if control.mode is ControlMode.INACTIVE and activate_error:
                self.hold_reason = activate_error
            self.state_since_ns = control.since_ns
        if dropped is not None:
            self.observations_dropped = dropped
        if stats is not None:
            delays = [s.transport_delay_s for s in stats if s.transport_delay_s is not None]
            self.transport_delay_ms = max(delays) * 1e3 if delays else float("nan")
        return self

    def record_boundary(self, outcome: ChunkOutcome) -> None:
        """Every chunk that reached the executor: its boundary jump and real-time chunking figures (d it was
        computed with, how closely it kept the prefix), published or not."""
        if outcome.raw_jump is not None:
            self.chunk_boundary_jump = outcome.raw_jump
            self.published_boundary_jump = outcome.published_jump or 0.0
        self.rtc_delay_steps = outcome.delay_steps if outcome.delay_steps is not None else -1
        self.rtc_prefix_error = outcome.prefix_error if outcome.prefix_error is not None else float("nan")

    def record_published(self, outcome: ChunkOutcome, observation_stamp_ns: int, timings: dict[str, float]) -> None:
        """A published chunk: its timings, observation, skipped points and switch figures."""
        self.last_timings = timings
        self.observation_stamp_ns = observation_stamp_ns
        self.skipped_points = outcome.past_points
        self.chunks_published += 1
        self.last_problem = ""
        if outcome.switch is not None:
            self.switch_position_jump = outcome.switch.position_jump
            self.switch_velocity_jump = outcome.switch.velocity_jump
            self.switch_peak_acceleration = outcome.switch.peak_acceleration

    def switch_figures(self) -> dict[str, float]:
        return {"switch_position_jump": self.switch_position_jump, "switch_velocity_jump": self.switch_velocity_jump,
                "switch_peak_acceleration": self.switch_peak_acceleration}

    def values(self) -> dict[str, str]:
        out = {"state": self.state, "state_since": f"{self.state_since_ns / 1e9:.9f}", "hold_reason": self.hold_reason,
               "last_problem": self.last_problem, "instruction_problem": self.instruction_problem,
               "observation_stamp": f"{self.observation_stamp_ns / 1e9:.9f}"}
        for stage in _LATENCY_FIELDS:
            out[f"{stage}_ms"] = f"{self.last_timings.get(stage, math.nan):.3f}"
        out.update({"transport_delay_ms": f"{self.transport_delay_ms:.3f}",
                    "chunk_boundary_jump": f"{self.chunk_boundary_jump:.6g}",
                    "published_boundary_jump": f"{self.published_boundary_jump:.6g}",
                    "skipped_points": str(self.skipped_points),
                    "switch_position_jump": f"{self.switch_position_jump:.6g}",
                    "switch_velocity_jump": f"{self.switch_velocity_jump:.6g}",
                    "switch_peak_acceleration": f"{self.switch_peak_acceleration:.6g}",
                    "rtc_delay_steps": str(self.rtc_delay_steps), "rtc_prefix_error": f"{self.rtc_prefix_error:.6g}",
                    "chunks_published": str(self.chunks_published),
                    "chunks_rejected": str(self.chunks_rejected),
                    "observations_dropped": str(self.observations_dropped)})
        return out


def _typed_status_class() -> Any:
    try:
        return importlib.import_module("wallx_ros_msgs.msg").PolicyStatus
    except (ImportError, AttributeError):
        return None


class PolicyStatusPublisher:
    """Publishes StatusFields on ~/status (DiagnosticStatus) and, if generated, ~/policy_status (typed)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._pub = node.create_publisher(DiagnosticStatus, "~/status", 10)
        self._typed_cls = _typed_status_class()
        self._typed_pub = node.create_publisher(self._typed_cls, "~/policy_status", 10) if self._typed_cls else None

    @property
    def typed(self) -> bool:
        return self._typed_pub is not None

    def as_diagnostic(self, st: StatusFields, name: str) -> DiagnosticStatus:
        level = _LEVELS.get(st.state, DiagnosticStatus.WARN)
        if st.last_problem:  # the last chunk was not published: numerical or model failures are errors
            serious = any(k in st.last_problem for k in ("non-finite", "inference failed", "failed the controller"))
            level = _worse(level, DiagnosticStatus.ERROR if serious else DiagnosticStatus.WARN)
        msg = DiagnosticStatus(name=name, hardware_id="wallx_policy", level=level)
        msg.message = st.state + (f": {st.hold_reason}" if st.hold_reason else "")
        msg.values = [KeyValue(key=k, value=v) for k, v in st.values().items()]
        return msg

    def publish(self, st: StatusFields) -> None:
        self._pub.publish(self.as_diagnostic(st, self._node.get_fully_qualified_name()))
        if self._typed_pub is not None:
            self._typed_pub.publish(self._typed(st))

    def _typed(self, st: StatusFields) -> Any:
        msg = self._typed_cls()
        msg.header.stamp = time_from_ns(st.stamp_ns)
        msg.state, msg.hold_reason, msg.last_problem = st.state, st.hold_reason, st.last_problem
        msg.instruction_problem = st.instruction_problem
        msg.state_since = time_from_ns(st.state_since_ns)
        msg.observation_stamp = time_from_ns(st.observation_stamp_ns)
        for stage in _LATENCY_FIELDS:
            setattr(msg, f"{stage}_ms", float(st.last_timings.get(stage, math.nan)))
        msg.transport_delay_ms = float(st.transport_delay_ms)
        msg.chunk_boundary_jump = float(st.chunk_boundary_jump)
        msg.published_boundary_jump = float(st.published_boundary_jump)
        msg.skipped_points, msg.chunks_published = st.skipped_points, st.chunks_published
        msg.switch_position_jump = float(st.switch_position_jump)
        msg.switch_velocity_jump = float(st.switch_velocity_jump)
        msg.switch_peak_acceleration = float(st.switch_peak_acceleration)
        msg.rtc_delay_steps, msg.rtc_prefix_error = st.rtc_delay_steps, float(st.rtc_prefix_error)
        msg.chunks_rejected, msg.observations_dropped = st.chunks_rejected, st.observations_dropped
        return msg


def path_markers(urdf: UrdfModel, plan: Plan, links: Sequence[str], stamp: Any) -> MarkerArray:
    """One LINE_STRIP per link: where the link goes along the predicted plan (URDF root frame)."""
    links = tuple(links) or urdf.leaf_links()
    paths: dict[str, list[PointMsg]] = {lk: [] for lk in links}
    for row in plan.positions:
        q = dict(zip(plan.names, row.tolist(), strict=True))
        for link, xyz in urdf.link_positions(q, links).items():
            paths[link].append(PointMsg(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2])))
    out = MarkerArray()
    for i, (link, points) in enumerate(paths.items()):
        m = Marker()
        m.header.frame_id = urdf.root
        m.header.stamp = stamp.to_msg()
        m.ns = "wallx_predicted_path"
        m.id = i
        m.type = Marker.LINE_STRIP
        m.action = Marker.ADD
        m.scale.x = 0.005
        m.color.r, m.color.g, m.color.b, m.color.a = 0.1, 0.8, 1.0, 0.9
        m.pose.orientation.w = 1.0
        m.points = points
        m.text = link
        out.markers.append(m)
    return out
