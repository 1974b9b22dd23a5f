"""Policy node over real DDS: images + joint states in, the backend's exact chunk out as a JointTrajectory."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_harness import RosTestNode, running_node
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.core.types import Observation
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

INSTRUCTION = "insert the peg into the socket"


def _image_msg(rgb: np.ndarray, stamp_ns: int) -> Image:
    msg = Image()
    msg.header.stamp = time_from_ns(stamp_ns)
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = "rgb8"
    msg.step = rgb.shape[1] * 3
    msg.data = rgb.tobytes()
    return msg


def test_trajectory_equals_backend_chunk(ros: RosTestNode, tiny_checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    images = {cam: rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for cam in DEFAULT_CAMERAS}
    state = rng.normal(size=len(ALOHA_JOINTS))
    # the robot publishes joints in its own order, with a joint the model does not use
    order = rng.permutation(len(ALOHA_JOINTS))
    joint_msg = JointState()
    joint_msg.name = [ALOHA_JOINTS[i] for i in order] + ["base_yaw"]
    joint_msg.position = [float(state[i]) for i in order] + [42.0]

    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "seed": 0, "num_threads": 1,
              "instruction": INSTRUCTION, "warmup": False}
    trajectories = ros.collect(JointTrajectory, "/wallx_policy/joint_trajectory")
    cam_pubs = {cam: ros.publisher(Image, f"/{cam}/image_raw", qos_profile_sensor_data) for cam in DEFAULT_CAMERAS}
    joint_pub = ros.publisher(JointState, "/joint_states")
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as node:
        assert ros.wait_for_subscribers(joint_pub, timeout_s=90), "policy node never subscribed to /joint_states"
        for pub in cam_pubs.values():
            assert ros.wait_for_subscribers(pub, timeout_s=30)
        assert ros.wait_for_publishers("/wallx_policy/joint_trajectory", timeout_s=30)
        stamp = ros.now_ns()
        joint_msg.header.stamp = time_from_ns(stamp)
        deadline = time.monotonic() + 60
        while not trajectories.messages and time.monotonic() < deadline:
            assert node.alive(), node.output()
            for cam, pub in cam_pubs.items():
                pub.publish(_image_msg(images[cam], stamp))
            joint_pub.publish(joint_msg)
            trajectories.wait_for(1, timeout_s=0.5)
        assert trajectories.messages, f"no trajectory within 60 s\n{node.output()}"
    traj = trajectories.messages[0]

    backend = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))
    expected = backend.predict_chunk(Observation(images=images, state=state.astype(np.float32),
                                                 instruction=INSTRUCTION, stamp_ns=stamp))
    assert list(traj.joint_names) == list(ALOHA_JOINTS)
    assert stamp_to_ns(traj.header.stamp) == stamp
    got = np.array([p.positions for p in traj.points])
    assert got.shape == expected.actions.shape
    np.testing.assert_allclose(got, expected.actions, rtol=0, atol=1e-9)
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
    np.testing.assert_allclose(times, (np.arange(len(times)) + 1) / backend.fps, atol=1e-9)


def test_node_refuses_random_weights_without_permission(tiny_checkpoint: Path, tmp_path: Path) -> None:
    params = {"checkpoint_dir": str(tiny_checkpoint), "warmup": False}
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as node:
        assert node.proc.wait(120) == 1
        assert "random weights" in node.output()


@pytest.mark.parametrize("missing", ["checkpoint_dir"])
def test_node_requires_a_checkpoint(missing: str, tmp_path: Path) -> None:
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", {"warmup": False}, tmp_path) as node:
        assert node.proc.wait(60) == 1
        assert f"parameter {missing} is required" in node.output()
