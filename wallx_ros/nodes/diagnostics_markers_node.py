"""Diagnostics overlay for RViz: ``/diagnostics`` as a text marker (``~/markers``, frame ``world``).

RViz 2 has no diagnostics display of its own; this node keeps the newest status of every diagnostic task
and republishes a short summary (level, message, timing keys) at ``rate_hz`` above the scene.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from visualization_msgs.msg import Marker, MarkerArray

from wallx_ros.analysis.diagnostics_summary import StatusEntry, summarise
from wallx_ros.nodes.executors import spin_node

__all__ = ["DiagnosticsMarkersNode", "main"]


class DiagnosticsMarkersNode(Node):
    def __init__(self) -> None:
        super().__init__("wallx_diagnostics_markers")
        for name, default, text in (("frame_id", "world", "frame of the text marker"),
                                    ("position", [0.0, 1.2, 0.6], "x, y, z of the text in frame_id"),
                                    ("text_height", 0.025, "text height (m)"),
                                    ("rate_hz", 2.0, "republish rate")):
            self.declare_parameter(name, default, ParameterDescriptor(description=text, read_only=True))
        self._frame = str(self.get_parameter("frame_id").value)
        self._position = [float(v) for v in self.get_parameter("position").value]
        self._height = float(self.get_parameter("text_height").value)
        rate = float(self.get_parameter("rate_hz").value)
        if len(self._position) != 3 or rate <= 0:
            raise ValueError("position must have 3 values and rate_hz must be > 0")
        self._statuses: dict[str, StatusEntry] = {}
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self._pub = self.create_publisher(MarkerArray, "~/markers", 1)
        self.create_timer(1.0 / rate, self._publish)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            level = status.level[0] if isinstance(status.level, bytes) else int(status.level)  # byte field
            self._statuses[status.name] = StatusEntry(status.name, level, status.message,
                                                      tuple((kv.key, kv.value) for kv in status.values))

    def _publish(self) -> None:
        lines = summarise(list(self._statuses.values())) or ["waiting for /diagnostics ..."]
        marker = Marker()
        marker.header.frame_id = self._frame
        marker.header.stamp = self.get_clock().now().to_msg()
        marker.ns, marker.id = "diagnostics", 0
        marker.type, marker.action = Marker.TEXT_VIEW_FACING, Marker.ADD
        marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = self._position
        marker.pose.orientation.w = 1.0
        marker.scale.z = self._height
        marker.color.r = marker.color.g = marker.color.b = marker.color.a = 1.0
        marker.text = "\n".join(lines)
        self._pub.publish(MarkerArray(markers=[marker]))


def main(args: list[str] | None = None) -> int:
    return spin_node(DiagnosticsMarkersNode, args=args, logger_name="diagnostics_markers")


if __name__ == "__main__":
    raise SystemExit(main())
