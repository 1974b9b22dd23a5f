"""The ROS environment every process gets (scripts/env.sh, the test harness): loopback-only, quiet.

Fast DDS 3 (Kilted) reads its XML profile from FASTDDS_DEFAULT_PROFILES_FILE; Fast DDS 2 (Jazzy) only from
FASTRTPS_DEFAULT_PROFILES_FILE, which Kilted's rmw also reads, with a deprecation warning in every process. So
exactly the stack's variable is set, and a ROS process starts without a warning.
"""

from __future__ import annotations

import subprocess
import sys

from ros_harness import REPO_ROOT, subprocess_env

from wallx_ros.cli.fastdds_profile import PROFILE_VARIABLES, profile_variable

STACK_OF_PYTHON = {(3, 11): "kilted", (3, 12): "jazzy"}


def test_env_sh_sets_the_profile_variable_of_its_stack() -> None:
    stack = STACK_OF_PYTHON[sys.version_info[:2]]
    script = (f"export FASTRTPS_DEFAULT_PROFILES_FILE=/stale FASTDDS_DEFAULT_PROFILES_FILE=/stale; "
              f"source scripts/env.sh --stack {stack} >/dev/null && env")
    run = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    env = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    assert [v for v in PROFILE_VARIABLES if v in env] == [profile_variable()]
    assert env[profile_variable()] == str(REPO_ROOT / "config" / "fastdds_loopback.xml")
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_a_ros_process_starts_without_warnings() -> None:
    env = subprocess_env()
    assert [v for v in PROFILE_VARIABLES if v in env] == [profile_variable()]
    snippet = "import rclpy; rclpy.init(); n = rclpy.create_node('quiet_probe'); n.destroy_node(); rclpy.shutdown()"
    run = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "WARN" not in run.stderr and "deprecated" not in run.stderr, run.stderr
