"""Camera and joint-state subscriptions that fill a ``core.stream_sync.StreamSync`` - for any node.

Used by the policy node and meant for the recorder: the ROS-free part (buffers, sync, staleness)
lives in ``wallx_ros.core.stream_sync``; this module only subscribes, converts messages and records
timings. API::

    inputs = ObservationInputs(
        node, cameras=("face_view", "left_wrist_view"), joint_names=("joint_a", ...),
        transport="raw",                    # raw: <cam>/image_raw (Image); compressed: <cam>/image_raw/compressed
        image_grid={"face_view": (192, 256)},   # (H, W) to resize to at arrival; cameras not listed keep their size
        sync_tolerance_s=0.05, max_age_s=0.5, depth=1,   # depth > 1 keeps history for nearest(stamp)
        camera_topics=None,                 # or {"face_view": "/front/color/image_raw"}; remaps work too
        callback_group=None, on_message=None)   # on_message(stream_name) after every message (any thread)
    result = inputs.sync.latest_synced(now_ns)   # SyncResult: .ok, .samples, .blocked (reasons), .stamp_ns
    frame: CameraFrame = result.samples["face_view"].value      # .rgb (H, W, 3) uint8, .decode_ms
    joints: JointSample = result.samples[JOINT_STREAM].value    # .positions (joint_names order, float64)
    inputs.sync.stats(now_ns)                    # rates, ages, transport delays, errors per stream
    inputs.transport.report()                    # delay statistics per stream, clock offset between hosts
    inputs.destroy()

Streams are named by camera key and ``JOINT_STREAM`` ("joint_states"). Cameras use SensorDataQoS
(best effort, depth 5); joint states a reliable depth-10 queue. Bad messages (unsupported encoding,
truncated data, corrupt jpeg, missing or repeated joint names, NaN positions) block their stream with
the reason until a good message arrives; they never raise into the executor. Stamps and receive times
use the node's clock (``use_sim_time`` honoured).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState

from wallx_ros.core.errors import CoreError
from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.stream_sync import StreamSync
from wallx_ros.core.transport_timing import TransportDelayMonitor, TransportTimingConfig
from wallx_ros.nodes.ros_conversions import ImageConverter, stamp_to_ns

__all__ = ["JOINT_STREAM", "CameraFrame", "JointSample", "ObservationInputs"]

JOINT_STREAM = "joint_states"


@dataclass(frozen=True)
class CameraFrame:
    rgb: npt.NDArray[np.uint8]
    decode_ms: float


@dataclass(frozen=True)
class JointSample:
    positions: npt.NDArray[np.float64]
    names: tuple[str, ...]


class ObservationInputs:
    """Subscriptions for ``cameras`` and ``joint_states`` feeding ``self.sync``."""

    def __init__(self, node: Node, cameras: Sequence[str], joint_names: Sequence[str], *, transport: str = "raw",
                 image_grid: Mapping[str, tuple[int, int]] | None = None, sync_tolerance_s: float = 0.05,
                 max_age_s: float = 0.5, depth: int = 1, camera_topics: Mapping[str, str] | None = None,
                 joint_topic: str = "joint_states", callback_group: Any = None,
                 on_message: Callable[[str], None] | None = None, use_cv_bridge: str = "auto",
                 transport_timing: TransportTimingConfig | None = None) -> None:
        if transport not in ("raw", "compressed"):
            raise CoreError(f"camera transport must be raw or compressed, got {transport!r}")
        self._node = node
        self._grid = dict(image_grid or {})
        self._on_message = on_message
        self._selector = JointSelector(joint_names)
        self.converter = ImageConverter(use_cv_bridge)
        self.cameras = tuple(cameras)
        self.sync: StreamSync[Any] = StreamSync((*self.cameras, JOINT_STREAM), sync_tolerance_s, max_age_s, depth)
        self.transport = TransportDelayMonitor((*self.cameras, JOINT_STREAM), transport_timing)
        self.topics: dict[str, str] = {}
        self._subs = []
        for cam in self.cameras:
            default = f"{cam}/image_raw" + ("/compressed" if transport == "compressed" else "")
            topic = (camera_topics or {}).get(cam) or default
            msg_type = CompressedImage if transport == "compressed" else Image
            self._subs.append(node.create_subscription(msg_type, topic, self._camera_callback(cam),
                                                       qos_profile_sensor_data, callback_group=callback_group))
            self.topics[cam] = topic
        self._subs.append(node.create_subscription(JointState, joint_topic, self._on_joint_state, 10,
                                                   callback_group=callback_group))
        self.topics[JOINT_STREAM] = joint_topic

    def _now_ns(self) -> int:
        return int(self._node.get_clock().now().nanoseconds)

    def _camera_callback(self, cam: str) -> Callable[[Any], None]:
        buffer = self.sync[cam]
        grid = self._grid.get(cam)

        def callback(msg: Image | CompressedImage) -> None:
            received = self._now_ns()
            t0 = time.monotonic()
            try:
                rgb = self.converter.to_rgb(msg)
                if grid is not None:
                    rgb = resize_to_grid(rgb, grid[0], grid[1])
            except CoreError as err:
                buffer.put_error(str(err), received)
                self._node.get_logger().error(f"camera {cam}: {err}", throttle_duration_sec=2.0)
            else:
                stamp = stamp_to_ns(msg.header.stamp)
                buffer.put(CameraFrame(rgb, (time.monotonic() - t0) * 1e3), stamp, received)
                self.transport.record(cam, stamp, received)
            if self._on_message is not None:
                self._on_message(cam)

        return callback

    def _on_joint_state(self, msg: JointState) -> None:
        received = self._now_ns()
        buffer = self.sync[JOINT_STREAM]
        try:
            positions = self._selector.select(msg.name, msg.position)
        except CoreError as err:
            buffer.put_error(str(err), received)
            self._node.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)
        else:
            stamp = stamp_to_ns(msg.header.stamp)
            buffer.put(JointSample(positions, self._selector.wanted), stamp, received)
            self.transport.record(JOINT_STREAM, stamp, received)
        if self._on_message is not None:
            self._on_message(JOINT_STREAM)

    def destroy(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs.clear()
