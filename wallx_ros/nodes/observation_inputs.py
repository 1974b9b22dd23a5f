"""Camera and joint-state subscriptions that fill a ``core.stream_sync.StreamSync``: the policy node's inputs.

The policy node needs the newest synchronised set (latest wins); the recorder needs every sample, aligned to a
frame grid, so it has its own subscriptions feeding ``dataset.recording`` (``core.frame_alignment``) and does not
use this class; both share the message decoding (``core.cdr_image``, ``core.image_decoding``). The ROS-free
part here (buffers, sync, staleness)
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
(best effort, depth 5); joint states a reliable depth-10 queue. Camera subscriptions take the serialized
bytes (``raw=True``): the payload is read in place (``core.cdr_image``) and resized once to the grid with the
channel reorder after the resize (``core.grid_decoding``), so no full-size copy is made in Python. With
cv_bridge in use (``use_cv_bridge``), which needs message objects, they take messages as before.
Bad messages (unsupported encoding, truncated data, corrupt jpeg, missing or repeated joint names, NaN
positions) block their stream with the reason until a good message arrives; they never raise into the
executor. Stamps and receive times use the node's clock (``use_sim_time`` honoured).
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

from wallx_ros.core.cdr_image import parse_compressed_image_cdr, parse_image_cdr
from wallx_ros.core.errors import CoreError
from wallx_ros.core.grid_decoding import compressed_to_grid, raw_to_grid
from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.core.input_diagnosis import StreamView
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.stream_sync import StreamStats, StreamSync, SyncResult
from wallx_ros.core.transport_timing import TransportDelayMonitor, TransportReport, TransportTimingConfig
from wallx_ros.nodes.ros_conversions import ImageConverter, stamp_to_ns

__all__ = ["JOINT_STREAM", "CameraFrame", "JointSample", "ObservationInputs"]

JOINT_STREAM = "joint_states"


@dataclass(frozen=True)
class CameraFrame:
    rgb: npt.NDArray[np.uint8]
    decode_ms: float
    arrived_monotonic: float = 0.0  # time.monotonic() at arrival: latency figures that mean something on sim time


@dataclass(frozen=True)
class JointSample:
    positions: npt.NDArray[np.float64]
    names: tuple[str, ...]
    arrived_monotonic: float = 0.0


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
        compressed = transport == "compressed"
        # serialized bytes read in place, unless cv_bridge (which converts message objects) is in use
        self.serialized = self.converter.bridge is None
        for cam in self.cameras:
            default = f"{cam}/image_raw" + ("/compressed" if compressed else "")
            topic = (camera_topics or {}).get(cam) or default
            msg_type = CompressedImage if compressed else Image
            self._subs.append(node.create_subscription(msg_type, topic, self._camera_callback(cam, compressed),
                                                       qos_profile_sensor_data, callback_group=callback_group,
                                                       raw=self.serialized))
            self.topics[cam] = topic
        self._subs.append(node.create_subscription(JointState, joint_topic, self._on_joint_state, 10,
                                                   callback_group=callback_group))
        self.topics[JOINT_STREAM] = joint_topic
        # the names a user remaps (-r FROM:=TO) to connect each stream to their own topic
        self.remap_names: dict[str, str] = {cam: (camera_topics or {}).get(cam) or
                                            f"{cam}/image_raw" + ("/compressed" if transport == "compressed" else "")
                                            for cam in self.cameras}
        self.remap_names[JOINT_STREAM] = joint_topic

    @property
    def image_path(self) -> str:
        """How camera messages become frames (for the node's log)."""
        return "serialized bytes, zero-copy" if self.serialized else self.converter.backend

    def _now_ns(self) -> int:
        return int(self._node.get_clock().now().nanoseconds)

    def _camera_callback(self, cam: str, compressed: bool) -> Callable[[Any], None]:
        buffer = self.sync[cam]
        grid = self._grid.get(cam)

        def frame(msg: Any) -> tuple[npt.NDArray[np.uint8], int]:
            """(RGB at the grid, header stamp) of one message: serialized bytes, or a message for cv_bridge."""
            if not self.serialized:
                rgb = self.converter.to_rgb(msg)
                return (rgb if grid is None else resize_to_grid(rgb, grid[0], grid[1])), stamp_to_ns(msg.header.stamp)
            if compressed:
                jpeg = parse_compressed_image_cdr(msg)
                return compressed_to_grid(jpeg.format, jpeg.data, grid), jpeg.stamp_ns
            raw = parse_image_cdr(msg)
            return raw_to_grid(raw.encoding, raw.height, raw.width, raw.step, raw.data, grid), raw.stamp_ns

        def callback(msg: bytes | Image | CompressedImage) -> None:
            received = self._now_ns()
            t0 = time.monotonic()
            try:
                rgb, stamp = frame(msg)
            except CoreError as err:
                buffer.put_error(str(err), received)
                self._node.get_logger().error(f"camera {cam}: {err}", throttle_duration_sec=2.0)
            else:
                buffer.put(CameraFrame(rgb, (time.monotonic() - t0) * 1e3, t0), stamp, received)
                self.transport.record(cam, stamp, received)
            if self._on_message is not None:
                self._on_message(cam)

        return callback

    def _on_joint_state(self, msg: JointState) -> None:
        received = self._now_ns()
        arrived = time.monotonic()
        buffer = self.sync[JOINT_STREAM]
        try:
            positions = self._selector.select(msg.name, msg.position)
        except CoreError as err:
            buffer.put_error(str(err), received)
            self._node.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)
        else:
            stamp = stamp_to_ns(msg.header.stamp)
            buffer.put(JointSample(positions, self._selector.wanted, arrived), stamp, received)
            self.transport.record(JOINT_STREAM, stamp, received)
        if self._on_message is not None:
            self._on_message(JOINT_STREAM)

    def latest_synced(self, now_ns: int) -> SyncResult[Any]:
        """The newest synced set of every stream (or why there is none): ``sync.latest_synced``."""
        return self.sync.latest_synced(now_ns)

    def stats(self, now_ns: int) -> list[StreamStats]:
        """Rates, ages, transport delays and errors per stream."""
        return self.sync.stats(now_ns)

    def transport_report(self, now_ns: int, sim_time: bool) -> TransportReport:
        """Delay statistics per stream and the clock offset between hosts."""
        return self.transport.report(now_ns, sim_time)

    def clear(self) -> None:
        """Forget every buffered sample (a clock jump: they belong to the old timeline)."""
        self.sync.clear()

    def stream_views(self, now_ns: int) -> list[StreamView]:
        """Each stream as ``core.input_diagnosis`` sees it: resolved topic, publishers on the graph, last stamp."""
        views = []
        for stats in self.sync.stats(now_ns):
            latest = self.sync[stats.name].latest()
            topic = self._node.resolve_topic_name(self.topics[stats.name])
            views.append(StreamView(stats.name, topic, self.remap_names[stats.name], self._node.count_publishers(topic),
                                    stats.received, stats.last_error, None if latest is None else latest.stamp_ns))
        return views

    def destroy(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs.clear()
