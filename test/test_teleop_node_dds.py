"""Teleop node over real DDS: leader mirroring, gamepad and keyboard (through a pty) -> command + action."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from ros_harness import REPO_ROOT, Collector, RosTestNode, running_node, subprocess_env
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

JOINTS = ["shoulder", "elbow"]
MODULE = "wallx_ros.nodes.teleop_node"


def _publish_for(seconds: float, *actions: object) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for act in actions:
            act()  # type: ignore[operator]
        time.sleep(0.02)


def _publish_until(done: Callable[[], bool], timeout_s: float, *actions: object) -> bool:
    """Keep the inputs coming (50 Hz) until the node has done what ``done`` checks: the event, not a duration
    (on a loaded machine the node may need much longer than the 1 s a quiet one needs)."""
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            return False
        _publish_for(0.02, *actions)
    return True


def _follower(ros: RosTestNode, positions: list[float]) -> object:
    pub = ros.publisher(JointState, "/joint_states")
    msg = JointState()
    msg.name = [*reversed(JOINTS), "gripper"]
    msg.position = [*reversed(positions), 0.0]
    return lambda: pub.publish(msg)


def _holding(msgs: list[object], count: int) -> bool:
    """The last ``count`` commands are one and the same target."""
    tail = msgs[-count:]
    return len(tail) == count and all(list(m.position) == list(tail[0].position) for m in tail)  # type: ignore[attr-defined]


def _positions(msgs: list[object]) -> np.ndarray:
    return np.array([list(m.position) if isinstance(m, JointState) else list(m.points[0].positions) for m in msgs])


def test_leader_mirroring_is_rate_limited_and_needs_the_deadman(ros: RosTestNode, tmp_path: Path) -> None:
    params = {"mode": "leader", "joint_names": JOINTS, "max_velocity": [0.5], "command_type": "JointState",
              "rate_hz": 50.0, "lower_limits": [-1.0, -1.0], "upper_limits": [1.0, 0.3]}
    commands: Collector = ros.collect(JointState, "/wallx_teleop/joint_command")
    actions: Collector = ros.collect(JointState, "/wallx_teleop/action")
    leader_pub = ros.publisher(JointState, "/leader/joint_states")
    deadman_pub = ros.publisher(Bool, "/wallx_teleop/deadman")
    leader = JointState(name=JOINTS, position=[2.0, 2.0])
    follower = _follower(ros, [0.1, 0.2])
    with running_node(MODULE, "wallx_teleop", params, tmp_path) as node:
        assert ros.wait_for_subscribers(leader_pub, timeout_s=60), node.output()
        assert ros.wait_for_subscribers(deadman_pub, timeout_s=30)
        assert ros.wait_for_publishers("/wallx_teleop/action", timeout_s=30)
        _publish_for(1.0, lambda: leader_pub.publish(leader))  # no follower position yet: silence
        assert not commands.messages and not actions.messages
        _publish_for(1.0, follower, lambda: leader_pub.publish(leader))  # not armed: hold at the follower
        assert commands.wait_for(10, 10) and actions.wait_for(10, 10)
        np.testing.assert_allclose(_positions(commands.messages), [[0.1, 0.2]] * len(commands.messages))
        commands.clear()
        armed = lambda: deadman_pub.publish(Bool(data=True))  # noqa: E731
        assert _publish_until(lambda: bool(commands.messages) and commands.messages[-1].position[0] > 0.2, 60,
                              follower, lambda: leader_pub.publish(leader), armed)
        moving = _positions(commands.messages)
        stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in commands.messages])
        commands.clear()
        # released: after the dead-man timeout (0.25 s of the node's clock) it holds one target
        lead = lambda: leader_pub.publish(leader)  # noqa: E731
        assert _publish_until(lambda: _holding(commands.messages, 10), 60, follower, lead)
        n = len(commands.messages)  # ... and it stays there: 20 more commands
        assert _publish_until(lambda: len(commands.messages) >= n + 20, 60, follower, lead)
        held = _positions(commands.messages[n - 10:])
    steps = np.abs(np.diff(moving, axis=0))
    assert moving[-1, 0] > 0.2, f"never moved toward the leader: {moving[-3:]}"  # (waited for above)
    # never faster than 0.5 rad/s between two commands (stamped with the node clock at each tick)
    assert np.all(steps <= 0.5 * np.diff(stamps)[:, None] + 2e-3), f"max step {steps.max():.3f}"
    assert np.all(moving[:, 1] <= 0.3 + 1e-9), "upper limit of elbow exceeded"
    np.testing.assert_allclose(held, np.repeat(held[:1], len(held), axis=0))  # one held target
    got = _positions(actions.messages)
    assert list(actions.messages[-1].name) == JOINTS and np.all(np.isfinite(got))


def test_gamepad_axes_move_joints_while_the_button_is_held(ros: RosTestNode, tmp_path: Path) -> None:
    params = {"mode": "joy", "joint_names": JOINTS, "max_velocity": [1.0], "joy_axes": [1, -1],
              "joy_axis_scale": [1.0], "deadman_button": 4, "rate_hz": 50.0}
    trajs: Collector = ros.collect(JointTrajectory, "/wallx_teleop/joint_trajectory")
    joy_pub = ros.publisher(Joy, "/joy")
    follower = _follower(ros, [0.0, 0.5])
    released = Joy(axes=[0.0, 1.0], buttons=[0, 0, 0, 0, 0])
    held = Joy(axes=[0.0, 1.0], buttons=[0, 0, 0, 0, 1])
    with running_node(MODULE, "wallx_teleop", params, tmp_path) as node:
        assert ros.wait_for_subscribers(joy_pub, timeout_s=60), node.output()
        assert ros.wait_for_publishers("/wallx_teleop/joint_trajectory", timeout_s=30)
        _publish_for(0.8, follower, lambda: joy_pub.publish(released))
        assert trajs.wait_for(5, 10)
        still = _positions(trajs.messages)
        trajs.clear()
        assert _publish_until(lambda: bool(trajs.messages) and trajs.messages[-1].points[0].positions[0] > 0.2, 60,
                              follower, lambda: joy_pub.publish(held))
        moved = _positions(trajs.messages)
    np.testing.assert_allclose(still, [[0.0, 0.5]] * len(still))
    assert moved[-1, 0] > 0.2 and np.all(moved[:, 1] == 0.5), moved[-3:]  # only the mapped joint moves
    traj = trajs.messages[-1]
    assert list(traj.joint_names) == JOINTS and len(traj.points) == 1 and not traj.points[0].velocities


def test_keyboard_in_a_terminal(ros: RosTestNode, tmp_path: Path) -> None:
    params = {"mode": "keyboard", "joint_names": JOINTS, "max_velocity": [1.0], "keyboard_step": 0.1}
    fd, params_path = tempfile.mkstemp(suffix=".yaml", dir=tmp_path)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({"wallx_teleop": {"ros__parameters": params}}, f)
    actions: Collector = ros.collect(JointState, "/wallx_teleop/action")
    follower = _follower(ros, [0.0, 0.0])
    master, slave = pty.openpty()
    log = open(tmp_path / "keyboard.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", MODULE, "--ros-args", "--params-file", params_path],
                            stdin=slave, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
                            cwd=str(REPO_ROOT))
    log_path = tmp_path / "keyboard.log"
    try:
        # the graph may still list earlier nodes' endpoints: wait for THIS node to read the follower and keys
        deadline = time.monotonic() + 90
        while "follower position received" not in log_path.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()[-2000:]
            _publish_for(0.1, follower)
        for key in (b"w", b" ", b"]", b"w", b"\x1b[A"):  # w while disarmed is ignored
            os.write(master, key)
            _publish_for(0.2, follower)
        # every key is handled when the action reaches its target (or the wait ends and the check below says so)
        _publish_until(lambda: bool(actions.messages) and list(actions.messages[-1].position) == [0.0, 0.2], 60,
                       follower)
        final = list(actions.messages[-1].position)
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
        os.close(master)
        os.close(slave)
    output = (tmp_path / "keyboard.log").read_text()
    assert "ARMED | joint 1: elbow" in output, output[-2000:]
    np.testing.assert_allclose(final, [0.0, 0.2], atol=1e-9)
