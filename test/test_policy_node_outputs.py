"""Policy node over real DDS with the other settings: CompressedImage inputs (png + jpeg, corrupt jpeg),
per-step streaming output (JointState at the control rate), dry run, joint limits from parameters and a
URDF, RViz path markers, and the optional FollowJointTrajectory client and cv_bridge paths.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from policy_sim_driver import S, SimDriver, compressed_msg, status_values
from ros_harness import Collector, NodeProcess, RosTestNode, running_node, wait_until
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from wallx_ros.nodes.ros_conversions import ImageConverter, stamp_to_ns
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

NODE = "/wallx_policy"
MS = 1_000_000
LIMIT = 0.05
VMAX = 0.5


def aloha_urdf() -> str:
    """Two 7-joint arms on a base, named like the tiny checkpoint's joints (a kinematic toy, not ALOHA's)."""
    parts = ['<robot name="toy_aloha"><link name="base_link"/>']
    for side, y in (("left", 0.3), ("right", -0.3)):
        parent = "base_link"
        for i, joint in enumerate(j for j in ALOHA_JOINTS if j.startswith(side)):
            link = f"{side}_link{i}"
            origin = f'xyz="0 {y if i == 0 else 0} 0.1"' if i < 2 else 'xyz="0.15 0 0"'
            axis = "0 0 1" if i % 2 == 0 else "0 1 0"
            parts.append(f'<link name="{link}"/><joint name="{joint}" type="revolute"><parent link="{parent}"/>'
                         f'<child link="{link}"/><origin {origin}/><axis xyz="{axis}"/>'
                         f'<limit lower="-3" upper="3" velocity="3" effort="1"/></joint>')
            parent = link
        parts.append(f'<link name="{side}_tip"/><joint name="{side}_tip_joint" type="fixed">'
                     f'<parent link="{parent}"/><child link="{side}_tip"/><origin xyz="0.05 0 0"/></joint>')
    parts.append("</robot>")
    return "".join(parts)


@pytest.fixture(scope="module")
def outputs(ros: RosTestNode, tiny_checkpoint: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, SimDriver, dict[str, Collector]]]:
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "num_threads": 1,
              "instruction": "stack the blocks", "warmup": False, "use_sim_time": True,
              "camera_transport": "compressed", "output_mode": "joint_state", "dry_run": True,
              "position_lower": [-LIMIT], "position_upper": [LIMIT], "max_velocity": [VMAX],
              "robot_description": aloha_urdf(), "diagnostics_rate_hz": 4.0,
              "engine": "stock"}  # LeRobot's own predict_action_chunk (the other modules run the default fast_flow)
    topics = {"dry_stream": (JointState, f"{NODE}/dry_run/joint_commands"),
              "dry_traj": (JointTrajectory, f"{NODE}/dry_run/joint_trajectory"),
              "stream": (JointState, f"{NODE}/joint_commands"), "traj": (JointTrajectory, f"{NODE}/joint_trajectory"),
              "markers": (MarkerArray, f"{NODE}/predicted_path"), "status": (DiagnosticStatus, f"{NODE}/status")}
    collectors = {k: ros.collect(t, name) for k, (t, name) in topics.items()}
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS, transport="compressed")
    driver.state = np.linspace(-0.02, 0.02, len(ALOHA_JOINTS))  # inside the limits
    driver.camera_override["face_view"] = lambda t: compressed_msg(driver.images["face_view"], t, "jpeg")
    driver.set_time(2000 * S)
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params,
                          tmp_path_factory.mktemp("policy_outputs")) as proc:
            assert driver.wait_for_node(), proc.output()[-3000:]
            yield proc, driver, collectors
            assert proc.alive()
    finally:
        driver.close()


def test_compressed_inputs_drive_a_limited_stream_at_the_control_rate_in_dry_run(outputs) -> None:  # type: ignore[no-untyped-def]
    proc, driver, c = outputs
    assert driver.pulse_until(lambda: len(c["dry_traj"].messages) >= 1 or not proc.alive(), 150)
    assert proc.alive(), proc.output()[-3000:]
    assert "engine stock" in proc.output(), "the engine parameter did not reach the backend"
    first = stamp_to_ns(c["dry_traj"].messages[0].header.stamp)
    # the stream after the first chunk: one message per control period (50 Hz on the simulated clock)
    def streamed() -> list:  # type: ignore[type-arg]
        return [m for m in list(c["dry_stream"].messages) if stamp_to_ns(m.header.stamp) > first]

    driver.rate = 0.1  # until 15 control periods of the node's clock went out (not for a wall-clock while)
    assert wait_until(lambda: len(streamed()) >= 15 or not proc.alive(), 120), f"{len(streamed())} streamed"
    driver.rate = 0.0
    running = streamed()
    stamps = np.array([stamp_to_ns(m.header.stamp) for m in running])
    assert len(stamps) >= 5
    # timer callbacks jitter (each message is stamped when it is sent) but the schedule does not drift
    assert np.median(np.diff(stamps)) == pytest.approx(20 * MS, abs=1 * MS), np.diff(stamps) / MS
    assert abs((stamps[-1] - stamps[0]) / (len(stamps) - 1) - 20 * MS) < 2 * MS, np.diff(stamps) / MS
    pos = np.array([m.position for m in running])
    assert list(running[0].name) == list(ALOHA_JOINTS)
    assert np.all(np.abs(pos) <= LIMIT + 1e-12), "a streamed position left the limits"
    # each streamed command moves at most max_velocity x the time since the previous one (its stamp is the
    # time the node limited it at), also when a chunk that follows a hold starts away from the held command
    dt = np.diff(stamps)[:, None] / 1e9
    steps = np.diff(pos, axis=0)
    over = np.argwhere(np.abs(steps) > VMAX * dt + 1e-9)[:5]
    assert over.size == 0, (f"a streamed step exceeded max_velocity: (message, joint) {over.tolist()}, "
                            f"steps {steps[tuple(over.T)]}, dt_ms {dt[over[:, 0], 0] * 1e3}, "
                            f"stamps_ms {(stamps - stamps[0]) / MS}")
    traj = c["dry_traj"].messages[0]
    assert np.all(np.abs([p.positions for p in traj.points]) <= LIMIT + 1e-12)
    # dry run: nothing reached the robot's topics
    assert c["stream"].messages == [] and c["traj"].messages == []


def test_limit_clamping_is_reported(outputs) -> None:  # type: ignore[no-untyped-def]
    proc, _, _ = outputs
    assert wait_until(lambda: "limits: clamped" in proc.output() or "rate-limited" in proc.output(), 30)


def test_markers_follow_the_predicted_path(outputs) -> None:  # type: ignore[no-untyped-def]
    _, _, c = outputs
    assert c["markers"].wait_for(1, 60)
    markers = c["markers"].messages[-1].markers
    assert {m.header.frame_id for m in markers} == {"base_link"}
    assert sorted(m.text for m in markers) == ["left_tip", "right_tip"]
    assert all(len(m.points) == 32 for m in markers)


def test_corrupt_jpeg_holds_and_the_stream_holds_still(outputs) -> None:  # type: ignore[no-untyped-def]
    proc, driver, c = outputs

    def corrupt(t: int) -> CompressedImage:
        msg = compressed_msg(driver.images["face_view"], t, "jpeg")
        data = bytearray(msg.data)
        data[200:] = b"\x00" * (len(data) - 200)
        msg.data = bytes(data[: len(data) // 3])
        return msg

    c["status"].clear()
    driver.camera_override["face_view"] = corrupt
    driver.rate = 0.1

    def holding() -> bool:
        assert proc.alive()
        return any(status_values(m)["state"] == "holding" and "face_view" in status_values(m)["hold_reason"]
                   for m in list(c["status"].messages))

    assert wait_until(holding, 60)
    reason = next(status_values(m)["hold_reason"] for m in c["status"].messages
                  if status_values(m)["state"] == "holding")
    assert "corrupt or truncated jpeg" in reason
    n = len(c["dry_stream"].messages)
    assert wait_until(lambda: len(c["dry_stream"].messages) >= n + 10, 120), \
        "the stream must keep commanding the hold position"
    held = c["dry_stream"].messages[n:]
    assert all(np.all(np.array(m.velocity) == 0.0) for m in held)
    assert np.allclose([m.position for m in held], held[0].position)
    driver.rate = 0.0


def test_follow_joint_trajectory_client() -> None:
    if importlib.util.find_spec("control_msgs") is None:
        pytest.skip("control_msgs is not installed (not on PyPI): output_mode action is optional and needs a ROS "
                    "install with ros-<distro>-control-msgs")
    from wallx_ros.nodes.follow_joint_trajectory import control_msgs_available

    assert control_msgs_available()


def test_cv_bridge_and_numpy_paths_agree() -> None:
    converter = ImageConverter("auto")
    if converter.bridge is None:
        pytest.skip(f"ROS 2 cv_bridge is not usable here ({converter.note}); the numpy path is used")
    numpy_path = ImageConverter("false")
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for encoding, data in (("rgb8", rgb), ("bgr8", rgb[:, :, ::-1]), ("mono8", rgb[:, :, 0])):
        msg = Image(height=48, width=64, encoding=encoding, step=64 * (1 if data.ndim == 2 else 3),
                    data=np.ascontiguousarray(data).tobytes())
        np.testing.assert_array_equal(converter.to_rgb(msg), numpy_path.to_rgb(msg))
    png = compressed_msg(rgb, 0, "png")
    np.testing.assert_array_equal(converter.to_rgb(png), numpy_path.to_rgb(png))
