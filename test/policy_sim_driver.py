"""Drive a policy node under ``use_sim_time``: the test owns /clock, the cameras and the joint states.

With simulated time the tests are deterministic on a slow, shared machine: the clock can be frozen
while the model runs (so exact stamp relations can be asserted), or run slower than real time (so a
1-3 s CPU inference still fits a 0.64 s chunk), and durations such as "hold within two control
periods" are measured on the node's own clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from ros_harness import RosTestNode, wait_until
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, JointState

from wallx_ros.nodes.ros_conversions import time_from_ns

S = 1_000_000_000


def image_msg(rgb: np.ndarray, stamp_ns: int, encoding: str = "rgb8") -> Image:
    msg = Image()
    msg.header.stamp = time_from_ns(stamp_ns)
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    channels = 1 if rgb.ndim == 2 else rgb.shape[2]
    msg.step = rgb.shape[1] * channels
    msg.data = rgb.tobytes()
    return msg


def compressed_msg(rgb: np.ndarray, stamp_ns: int, fmt: str = "jpeg") -> CompressedImage:
    import cv2

    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    msg = CompressedImage()
    msg.header.stamp = time_from_ns(stamp_ns)
    msg.format = fmt
    msg.data = buf.tobytes()
    return msg


class SimDriver:
    """Publishes /clock and the node's inputs from a background thread.

    ``rate``: simulated seconds per real second (0 = clock frozen, nothing new published).
    ``camera_override[cam]`` / ``joint_override``: a function ``stamp_ns -> message`` replacing the good
    message (bad-input tests); ``muted``: streams not published at all (stale tests).
    """

    def __init__(self, ros: RosTestNode, cameras: tuple[str, ...], joints: tuple[str, ...], *,
                 transport: str = "raw", shape: tuple[int, int] = (240, 320), start_s: float = 1000.0,
                 camera_hz: float = 30.0, joint_hz: float = 100.0, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self.ros = ros
        self.cameras = cameras
        self.joints = joints
        self.transport = transport
        self.images = {cam: rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for cam in cameras}
        self.state = rng.normal(size=len(joints)) * 0.1
        self.now_ns = int(start_s * S)
        self.rate = 0.0
        self.camera_override: dict[str, Callable[[int], Any]] = {}
        self.joint_override: Callable[[int], Any] | None = None
        self.muted: set[str] = set()
        self.last_stamp: dict[str, int] = {}
        self._camera_period = round(S / camera_hz)
        self._joint_period = round(S / joint_hz)
        self._next_camera = self._next_joint = self.now_ns
        self._lock = threading.RLock()
        self.clock_pub = ros.publisher(Clock, "/clock", 10)
        suffix = "/image_raw/compressed" if transport == "compressed" else "/image_raw"
        msg_type = CompressedImage if transport == "compressed" else Image
        self.cam_pubs = {cam: ros.publisher(msg_type, f"/{cam}{suffix}", qos_profile_sensor_data) for cam in cameras}
        self.joint_pub = ros.publisher(JointState, "/joint_states", 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # -- messages -----------------------------------------------------------------------------------------
    def camera_message(self, cam: str, stamp_ns: int) -> Any:
        if cam in self.camera_override:
            return self.camera_override[cam](stamp_ns)
        if self.transport == "compressed":
            return compressed_msg(self.images[cam], stamp_ns, "png")
        return image_msg(self.images[cam], stamp_ns)

    def joint_message(self, stamp_ns: int) -> JointState:
        if self.joint_override is not None:
            return self.joint_override(stamp_ns)
        msg = JointState()
        msg.header.stamp = time_from_ns(stamp_ns)
        order = list(reversed(range(len(self.joints))))  # not the model's order, plus an extra joint
        msg.name = [self.joints[i] for i in order] + ["base_yaw"]
        msg.position = [float(self.state[i]) for i in order] + [42.0]
        return msg

    def publish_inputs(self, stamp_ns: int | None = None) -> None:
        """Publish every (unmuted) camera and the joint state once, stamped ``stamp_ns`` (default: now)."""
        with self._lock:
            stamp = self.now_ns if stamp_ns is None else stamp_ns
            for cam, pub in self.cam_pubs.items():
                if cam not in self.muted:
                    pub.publish(self.camera_message(cam, stamp))
                    self.last_stamp[cam] = stamp
            if "joint_states" not in self.muted:
                self.joint_pub.publish(self.joint_message(stamp))
                self.last_stamp["joint_states"] = stamp

    def set_time(self, t_ns: int) -> None:
        with self._lock:
            self.now_ns = int(t_ns)
            self._next_camera = self._next_joint = self.now_ns
            self.clock_pub.publish(Clock(clock=time_from_ns(self.now_ns)))

    def pulse_until(self, predicate: Callable[[], bool], timeout_s: float, rate: float = 0.1, pulse_s: float = 0.3,
                    freeze_s: float = 15.0) -> bool:
        """Let time run briefly (fresh inputs), then freeze the clock while the model works; repeat.

        However slow the machine, a chunk computed while the clock is frozen is never in the past.
        """
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                self.rate = rate
                if wait_until(predicate, pulse_s):
                    return True
                self.rate = 0.0
                if wait_until(predicate, min(freeze_s, max(0.0, deadline - time.monotonic()))):
                    return True
            return bool(predicate())
        finally:
            self.rate = 0.0

    def wait_for_node(self, timeout_s: float = 240.0) -> bool:  # a node process imports torch + LeRobot first
        pubs = [*self.cam_pubs.values(), self.joint_pub, self.clock_pub]
        return all(self.ros.wait_for_subscribers(p, timeout_s=timeout_s) for p in pubs)

    # -- background loop ----------------------------------------------------------------------------------
    def _run(self) -> None:
        tick = 0.01
        next_wake = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                if self.rate > 0:
                    self.now_ns += round(self.rate * tick * S)
                    if self.now_ns >= self._next_joint:
                        self._next_joint = self.now_ns + self._joint_period
                        if "joint_states" not in self.muted:
                            self.joint_pub.publish(self.joint_message(self.now_ns))
                            self.last_stamp["joint_states"] = self.now_ns
                    if self.now_ns >= self._next_camera:
                        self._next_camera = self.now_ns + self._camera_period
                        for cam, pub in self.cam_pubs.items():
                            if cam not in self.muted:
                                pub.publish(self.camera_message(cam, self.now_ns))
                                self.last_stamp[cam] = self.now_ns
                self.clock_pub.publish(Clock(clock=time_from_ns(self.now_ns)))
            next_wake += tick
            self._stop.wait(max(0.0, next_wake - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def call_service(ros: RosTestNode, srv_type: Any, name: str, request: Any, timeout_s: float = 30.0) -> Any:
    """Call a service from the test thread while the peer node spins in the background."""
    client = ros.node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=timeout_s), f"service {name} not available"
        future = client.call_async(request)
        assert wait_until(future.done, timeout_s), f"service {name} did not answer within {timeout_s} s"
        return future.result()
    finally:
        ros.node.destroy_client(client)


def status_values(msg: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in msg.values}
