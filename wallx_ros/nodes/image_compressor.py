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

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from wallx_ros.core.errors import CoreError
from wallx_ros.core.image_encoding import JPEG_FORMAT, encode_jpeg
from wallx_ros.nodes.executors import spin_node
from wallx_ros.nodes.ros_conversions import image_to_rgb

__all__ = ["ImageCompressor", "main"]


class ImageCompressor(Node):
    def __init__(self) -> None:
        super().__init__("image_compressor")
        self.declare_parameter("cameras", ["face_view", "left_wrist_view", "right_wrist_view"], ParameterDescriptor(
            type=ParameterType.PARAMETER_STRING_ARRAY, read_only=True,
            description="camera namespaces: <camera>/image_raw -> <camera>/image_raw/compressed"))
        self.declare_parameter("jpeg_quality", 80, ParameterDescriptor(
            type=ParameterType.PARAMETER_INTEGER, read_only=True,
            description="JPEG quality 1..100 (80: ~4% of the raw size on camera images)",
            integer_range=[IntegerRange(from_value=1, to_value=100, step=1)]))
        cameras = [str(c) for c in self.get_parameter("cameras").value]
        self.quality = int(self.get_parameter("jpeg_quality").value)
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
    return spin_node(ImageCompressor, args=args, logger_name="image_compressor", startup_errors=(CoreError,))


if __name__ == "__main__":
    raise SystemExit(main())
