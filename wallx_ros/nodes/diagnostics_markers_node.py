"""Diagnostics overlay for RViz: ``/diagnostics`` as a text marker (``~/markers``, frame ``world``).

RViz 2 has no diagnostics display of its own; this node keeps the newest status of every diagnostic task
and republishes a short summary (level, message, timing keys) at ``rate_hz`` above the scene.
"""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from visualization_msgs.msg import Marker, MarkerArray

from wallx_ros.analysis.diagnostics_summary import StatusEntry, summarise
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.nodes.executors import spin_node
from wallx_ros.nodes.parameters import declare_and_read

__all__ = ["TABLE", "DiagnosticsMarkersNode", "main"]

TABLE = ParameterTable("wallx_diagnostics_markers", [
    Param("frame_id", ParamType.STRING, "world", "frame of the text marker"),
    Param("position", ParamType.DOUBLE_ARRAY, [0.0, 1.2, 0.6], "x, y, z of the text in frame_id", length=3),
    Param("text_height", ParamType.DOUBLE, 0.025, "text height (m)", low=1e-6),
    Param("rate_hz", ParamType.DOUBLE, 2.0, "republish rate", low=0.01, high=1000.0),
], summary="/diagnostics as an RViz text marker (~/markers).")


class DiagnosticsMarkersNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        values = declare_and_read(self, TABLE)
        self._frame = str(values["frame_id"])
        self._position = [float(v) for v in values["position"]]
        self._height = float(values["text_height"])
        rate = float(values["rate_hz"])
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
    return spin_node(DiagnosticsMarkersNode, args=args, logger_name=TABLE.node_name, table=TABLE)


if __name__ == "__main__":
    raise SystemExit(main())
