"""wallx-ros-ctl over real DDS: what the README does with ros2cli, done in the pip venv with rclpy only.

A real policy node (tiny checkpoint, autostart off) is driven through its lifecycle, paused, resumed, e-stopped
and given instructions (a refused one comes back with the node's reason and exit code 1); a real recorder node
records an episode started and stopped by the tool; ``status`` summarises their /diagnostics. Each command is
its own process, as a user runs it, and every step waits on the node's answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_harness import REPO_ROOT, RosTestNode, running_node, subprocess_env

from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS


def ctl(*args: str, timeout_s: float = 240.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wallx_ros.cli.ctl", *args], capture_output=True, text=True,
                          env=subprocess_env(), cwd=str(REPO_ROOT), timeout=timeout_s)


@pytest.fixture(scope="module")
def policy(ros: RosTestNode, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "num_threads": 1,
              "warmup": False, "autostart": False, "diagnostics_rate_hz": 4.0}
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params,
                      tmp_path_factory.mktemp("ctl_policy")) as proc:
        yield proc


@pytest.mark.timeout(900)  # a dozen command processes (each imports rclpy) and a model load: slow under load
def test_lifecycle_pause_resume_estop_and_instruction(policy) -> None:  # type: ignore[no-untyped-def]
    run = ctl("lifecycle", "get")
    assert run.returncode == 0 and run.stdout.strip() == "/wallx_policy: unconfigured", run.stdout + run.stderr
    run = ctl("lifecycle", "configure", "--timeout", "200")
    assert run.returncode == 0 and "unconfigured -> inactive" in run.stdout, run.stdout + run.stderr
    run = ctl("lifecycle", "activate")
    assert run.returncode == 0 and "inactive -> active" in run.stdout, run.stdout + run.stderr
    run = ctl("pause")
    assert run.returncode == 0 and run.stdout.startswith("/wallx_policy/pause: ok"), run.stdout + run.stderr
    run = ctl("resume")
    assert run.returncode == 0 and run.stdout.startswith("/wallx_policy/resume: ok"), run.stdout + run.stderr
    run = ctl("estop")
    assert run.returncode == 0 and "e-stop engaged" in run.stdout, run.stdout + run.stderr
    run = ctl("resume")  # refused while e-stopped: exit code 1, the node's reason printed
    assert run.returncode == 1 and "refused" in run.stdout, run.stdout + run.stderr
    run = ctl("estop", "--release")
    assert run.returncode == 0 and "released" in run.stdout, run.stdout + run.stderr
    run = ctl("instruction", "insert the peg")
    assert run.returncode == 0 and "instruction set" in run.stdout, run.stdout + run.stderr
    run = ctl("instruction", "insert <|image_pad|> the peg")
    assert run.returncode == 1 and "control token" in run.stderr, run.stdout + run.stderr
    run = ctl("status")
    assert run.returncode == 0 and "/wallx_policy: control" in run.stdout and "/wallx_policy: inputs" in run.stdout, \
        run.stdout + run.stderr
    assert "paused" in run.stdout, run.stdout
    run = ctl("lifecycle", "deactivate")
    assert run.returncode == 0 and "active -> inactive" in run.stdout, run.stdout + run.stderr
    assert policy.alive()


def test_a_missing_node_is_an_error_that_says_why() -> None:
    run = ctl("pause", "--node", "/no_such_node", "--timeout", "2")
    assert run.returncode == 1 and "no service /no_such_node/pause" in run.stderr and "ROS_DOMAIN_ID" in run.stderr


class _Inputs:
    """The recorder's inputs (one camera, joint states, the action) at 20 Hz from the test's peer node."""

    def __init__(self, ros: RosTestNode) -> None:
        from sensor_msgs.msg import Image, JointState

        self.camera = ros.publisher(Image, f"/{DEFAULT_CAMERAS[0]}/image_raw", qos_profile_sensor_data)
        self.joints = ros.publisher(JointState, "/joint_states")
        self.action = ros.publisher(JointState, "/wallx_teleop/action")
        self.ros = ros
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from sensor_msgs.msg import Image, JointState

        while not self.stop.wait(0.05):
            stamp = self.ros.node.get_clock().now().to_msg()
            img = Image(height=24, width=32, encoding="rgb8", step=96, data=bytes(24 * 96))
            img.header.stamp = stamp
            self.camera.publish(img)
            for pub in (self.joints, self.action):
                js = JointState(name=list(ALOHA_JOINTS), position=[0.0] * len(ALOHA_JOINTS))
                js.header.stamp = stamp
                pub.publish(js)

    def __enter__(self) -> _Inputs:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_recorder_episode_start_stop_and_instruction(ros: RosTestNode, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    params = {"root": str(root), "repo_id": "local/ctl", "fps": 10, "use_videos": False, "streaming_encoding": False,
              "cameras": list(DEFAULT_CAMERAS[:1]), "joint_names": list(ALOHA_JOINTS), "diagnostics_period_s": 0.5,
              "max_age_s": 0.5, "watermark_delay_s": 1.0}
    with running_node("wallx_ros.nodes.recorder_node", "wallx_recorder", params, tmp_path / "log") as proc, \
            _Inputs(ros):
        run = ctl("record", "start", "--timeout", "120")  # refused, with the recorder's reason
        assert run.returncode == 1 and "refused: no instruction" in run.stdout, \
            run.stdout + run.stderr + proc.output()[-2000:]
        run = ctl("instruction", "--node", "/wallx_recorder", "stack the cups")
        assert run.returncode == 0 and "acknowledged" in run.stdout, run.stdout + run.stderr
        # delivered is not yet handled: the recorder takes the topic in its own callback, so a start request may
        # still meet "no instruction" (then again, on the recorder's answer; anything else is a failure)
        for _ in range(10):
            run = ctl("record", "start")
            if "no instruction" not in run.stdout:
                break
        assert run.returncode == 0 and run.stdout.startswith("/wallx_recorder/start_episode: ok"), \
            run.stdout + run.stderr + proc.output()[-2000:]
        run = ctl("status", "--node", "/wallx_recorder")
        assert run.returncode == 0 and "wallx_recorder: dataset" in run.stdout, run.stdout + run.stderr
        run = ctl("record", "stop")
        assert run.returncode == 0 and "/wallx_recorder/stop_episode: ok" in run.stdout, \
            run.stdout + run.stderr + proc.output()[-2000:]
        run = ctl("record", "discard")  # nothing open any more: the recorder refuses, with its reason
        assert run.returncode == 1 and "refused" in run.stdout, run.stdout + run.stderr
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 1, info
