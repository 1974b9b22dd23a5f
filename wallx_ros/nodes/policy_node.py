"""Policy node: cameras + joint states in, WALL-OSS action chunks out as trajectory_msgs/JointTrajectory.

Data flow: image/joint-state subscriptions keep the latest message of each stream -> a timer assembles
an Observation when the worker is idle -> the inference worker thread runs the backend -> a guard
condition brings the chunk back to the executor -> JointTrajectory on ``~/joint_trajectory``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from wallx_ros import ros_compat
from wallx_ros.core.errors import CoreError
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.types import Observation
from wallx_ros.nodes.ros_conversions import chunk_to_joint_trajectory, image_to_rgb, stamp_to_ns
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.errors import PolicyError
from wallx_ros.policy.inference_worker import InferenceResult, InferenceWorker

__all__ = ["PolicyNode", "PolicyNodeConfig", "main"]


@dataclass(frozen=True)
class PolicyNodeConfig:
    """The node's parameters, read once at start-up."""

    backend: BackendConfig
    instruction: str
    camera_transport: str
    trigger_rate_hz: float
    warmup: bool


def _declare(node: Node, name: str, default: object, description: str, read_only: bool = True) -> None:
    node.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=read_only))


class PolicyNode(Node):
    """Runs one WALL-OSS policy on the robot's cameras and joint states."""

    def __init__(self) -> None:
        super().__init__("wallx_policy")
        self.config = self._read_parameters()
        self.get_logger().info(f"loading {self.config.backend.checkpoint_dir} on {self.config.backend.device}")
        self.backend = load_backend(self.config.backend)
        self._selector = JointSelector(self.backend.state_names)
        if self.config.warmup:
            self.get_logger().info(f"warm-up inference took {self.backend.warmup():.0f} ms")

        self._lock = threading.Lock()
        self._images: dict[str, tuple[np.ndarray, int]] = {}
        self._state: tuple[np.ndarray, int] | None = None
        self._instruction = self.config.instruction
        self._results: list[InferenceResult] = []

        for cam in self.backend.cameras:
            if self.config.camera_transport == "compressed":
                self.create_subscription(CompressedImage, f"{cam}/image_raw/compressed",
                                         self._image_callback(cam), qos_profile_sensor_data)
            else:
                self.create_subscription(Image, f"{cam}/image_raw", self._image_callback(cam),
                                         qos_profile_sensor_data)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, 10)
        self.create_subscription(String, "~/instruction", self._on_instruction, 10)
        self._trajectory_pub = self.create_publisher(JointTrajectory, "~/joint_trajectory", 10)

        self._result_ready = self.create_guard_condition(self._publish_results)
        self._worker = InferenceWorker(self.backend, self._on_result)
        self._worker.start()
        self.create_timer(1.0 / self.config.trigger_rate_hz, self._maybe_submit)
        self.get_logger().info(
            f"ready: cameras {list(self.backend.cameras)}, joints {list(self.backend.state_names)} -> "
            f"{self.resolve_topic_name('~/joint_trajectory')}"
        )

    # -- parameters --------------------------------------------------------------------------------------
    def _read_parameters(self) -> PolicyNodeConfig:
        _declare(self, "checkpoint_dir", "", "LeRobot wall_x policy folder to load (required)")
        _declare(self, "backbone_dir", "", "local WALL-OSS backbone folder when the checkpoint has none")
        _declare(self, "action_tokenizer_dir", "", "fast mode: action tokenizer folder")
        _declare(self, "device", "cpu", "cpu, cuda, cuda:N or auto")
        _declare(self, "dtype", "bfloat16", "model dtype (WallX runs mixed bfloat16/float32)")
        _declare(self, "mode", "", "diffusion or fast; empty = the checkpoint's prediction_mode")
        _declare(self, "allow_random_weights", False, "accept random-weight test checkpoints (never on a robot)")
        _declare(self, "trust_remote_code", False, "allow loading an action tokenizer that executes code")
        _declare(self, "seed", -1, "re-seed torch before each prediction (>= 0), -1 = free-running noise")
        _declare(self, "num_threads", 0, "torch CPU threads, 0 = torch default")
        _declare(self, "instruction", "", "task instruction; ~/instruction (std_msgs/String) replaces it")
        _declare(self, "camera_transport", "raw", "raw: <cam>/image_raw Image; compressed: .../compressed")
        _declare(self, "trigger_rate_hz", 50.0, "how often to check whether a new inference can start")
        _declare(self, "warmup", True, "run one inference at start so the first real one is not slow")

        def get(name: str) -> object:
            return self.get_parameter(name).value

        checkpoint = str(get("checkpoint_dir"))
        if not checkpoint:
            raise PolicyError("parameter checkpoint_dir is required (a LeRobot wall_x policy folder)")
        transport = str(get("camera_transport"))
        if transport not in ("raw", "compressed"):
            raise PolicyError(f"camera_transport must be raw or compressed, got {transport!r}")
        seed = int(get("seed"))  # type: ignore[call-overload]
        backend = BackendConfig(
            checkpoint_dir=Path(checkpoint),
            backbone_dir=Path(str(get("backbone_dir"))) if get("backbone_dir") else None,
            action_tokenizer_dir=Path(str(get("action_tokenizer_dir"))) if get("action_tokenizer_dir") else None,
            device=str(get("device")),
            dtype=str(get("dtype")),
            mode=str(get("mode")),
            allow_random_weights=bool(get("allow_random_weights")),
            trust_remote_code=bool(get("trust_remote_code")),
            seed=seed if seed >= 0 else None,
            num_threads=int(get("num_threads")),  # type: ignore[call-overload]
        )
        rate = float(get("trigger_rate_hz"))  # type: ignore[arg-type]
        if rate <= 0:
            raise PolicyError(f"trigger_rate_hz must be > 0, got {rate}")
        return PolicyNodeConfig(backend=backend, instruction=str(get("instruction")), camera_transport=transport,
                                trigger_rate_hz=rate, warmup=bool(get("warmup")))

    # -- inputs ------------------------------------------------------------------------------------------
    def _image_callback(self, cam: str):
        def callback(msg: Image | CompressedImage) -> None:
            try:
                rgb = image_to_rgb(msg)
            except CoreError as err:
                self.get_logger().error(f"camera {cam}: {err}", throttle_duration_sec=2.0)
                return
            with self._lock:
                self._images[cam] = (rgb, stamp_to_ns(msg.header.stamp))
        return callback

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            state = self._selector.select(msg.name, msg.position)
        except CoreError as err:
            self.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._state = (state.astype(np.float32), stamp_to_ns(msg.header.stamp))

    def _on_instruction(self, msg: String) -> None:
        with self._lock:
            self._instruction = msg.data

    # -- inference ---------------------------------------------------------------------------------------
    def _maybe_submit(self) -> None:
        if self._worker.busy:
            return
        with self._lock:
            if self._state is None or any(cam not in self._images for cam in self.backend.cameras):
                return
            state, state_stamp = self._state
            images = {cam: self._images[cam][0] for cam in self.backend.cameras}
            stamp = max([state_stamp] + [self._images[cam][1] for cam in self.backend.cameras])
            obs = Observation(images=images, state=state, instruction=self._instruction, stamp_ns=stamp)
            # each message is used once: the next inference waits for fresh data
            self._state = None
            self._images.clear()
        self._worker.submit(obs)

    def _on_result(self, result: InferenceResult) -> None:
        """Worker thread: store the result and wake the executor."""
        with self._lock:
            self._results.append(result)
        self._result_ready.trigger()

    def _publish_results(self) -> None:
        with self._lock:
            results, self._results = self._results, []
        for result in results:
            if result.chunk is None:
                self.get_logger().error(f"inference failed: {result.error}")
                continue
            if not np.all(np.isfinite(result.chunk.actions)):
                self.get_logger().error("model produced non-finite actions: nothing published")
                continue
            self._trajectory_pub.publish(chunk_to_joint_trajectory(result.chunk, result.chunk.stamp_ns))

    def shutdown(self) -> None:
        self._worker.stop()


def main(args: list[str] | None = None) -> int:
    try:
        with ros_compat.init(args=args):  # rclpy.init() is no context manager on Jazzy
            try:
                node = PolicyNode()
            except (PolicyError, CoreError) as err:
                rclpy.logging.get_logger("wallx_policy").fatal(f"cannot start: {err}")
                return 1
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            try:
                executor.spin()
            finally:
                node.shutdown()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
