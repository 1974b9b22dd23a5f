"""Image compressor node (robot side): ``<camera>/image_raw`` in, JPEG ``<camera>/image_raw/compressed`` out.

For a policy on another host, raw frames are too big for most links (3 cameras at 640x480 and 30 Hz
are 83 MB/s). With a full ROS install, ``image_transport``'s compressed plugin does this job (run
``ros2 run image_transport republish raw compressed`` or use the camera driver's own
``image_raw/compressed`` topic with its ``jpeg_quality`` parameter). This node is the same thing for
pip-only installs, where image_transport is not available: one subscription and one publisher per
camera, header (stamp, frame_id) copied unchanged so the policy host still sees the capture time.
Frames that cannot be encoded are reported and skipped.
"""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from wallx_ros.core.errors import CoreError
from wallx_ros.core.image_encoding import JPEG_FORMAT, encode_jpeg
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.nodes.executors import spin_node
from wallx_ros.nodes.parameters import declare_and_read
from wallx_ros.nodes.ros_conversions import image_to_rgb

__all__ = ["TABLE", "ImageCompressor", "main"]

TABLE = ParameterTable("image_compressor", [
    Param("cameras", ParamType.STRING_ARRAY, ["face_view", "left_wrist_view", "right_wrist_view"],
          "camera namespaces: <camera>/image_raw -> <camera>/image_raw/compressed"),
    Param("jpeg_quality", ParamType.INTEGER, 80, "JPEG quality (80: ~4% of the raw size on camera images)",
          low=1, high=100),
], summary="Robot side of a two-host deployment: raw camera images in, JPEG CompressedImage out.")


class ImageCompressor(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        values = declare_and_read(self, TABLE)
        cameras = [str(c) for c in values["cameras"]]
        self.quality = int(values["jpeg_quality"])
        if not cameras or len(set(cameras)) != len(cameras):
            raise CoreError(f"parameter cameras must list distinct camera names, got {cameras}")
        self._pubs = {}
        for cam in cameras:
            self._pubs[cam] = self.create_publisher(CompressedImage, f"{cam}/image_raw/compressed",
                                                    qos_profile_sensor_data)
            self.create_subscription(Image, f"{cam}/image_raw", self._callback(cam), qos_profile_sensor_data)
        self.get_logger().info(f"compressing {cameras} as jpeg quality {self.quality}")

    def _callback(self, cam: str):
        pub = self._pubs[cam]

        def callback(msg: Image) -> None:
            try:
                data = encode_jpeg(image_to_rgb(msg), self.quality)
            except CoreError as err:
                self.get_logger().error(f"camera {cam}: {err}", throttle_duration_sec=2.0)
                return
            out = CompressedImage()
            out.header = msg.header
            out.format = JPEG_FORMAT
            out.data = data
            pub.publish(out)
        return callback


def main(args: list[str] | None = None) -> int:
    return spin_node(ImageCompressor, args=args, logger_name=TABLE.node_name, table=TABLE,
                     startup_errors=(CoreError,))


if __name__ == "__main__":
    raise SystemExit(main())
