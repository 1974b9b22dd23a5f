"""msg/PolicyStatus.msg, the ~/status key/values and the generated wallx_ros_msgs package agree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ros_harness import REPO_ROOT, subprocess_env

from wallx_ros.cli.interfaces_package import PACKAGE, write_package
from wallx_ros.nodes.policy_status import STATUS_FIELDS, StatusFields

MSG = REPO_ROOT / "msg" / "PolicyStatus.msg"


def _msg_fields() -> list[str]:
    names = []
    for line in MSG.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line.split()[1])
    return names


def test_status_keys_are_the_message_fields() -> None:
    fields = _msg_fields()
    assert fields[0] == "header"
    assert fields[1:] == list(STATUS_FIELDS)
    assert list(StatusFields().values()) == list(STATUS_FIELDS)


def test_generated_package_is_a_valid_ament_cmake_interfaces_package(tmp_path: Path) -> None:
    out = write_package(tmp_path / PACKAGE, REPO_ROOT / "msg")
    xml = ET.parse(out / "package.xml").getroot()
    assert xml.findtext("name") == PACKAGE
    assert xml.findtext("export/build_type") == "ament_cmake"
    assert xml.findtext("member_of_group") == "rosidl_interface_packages"
    cmake = (out / "CMakeLists.txt").read_text()
    assert re.search(r'rosidl_generate_interfaces\(\$\{PROJECT_NAME\}\s+"msg/PolicyStatus.msg"', cmake)
    assert (out / "msg" / "PolicyStatus.msg").read_text() == MSG.read_text()


def test_generated_package_builds_and_carries_the_status(tmp_path: Path) -> None:
    """Needs CMake and the rosidl generator wheels (not in the default venv): see README."""
    prefix = Path(sys.prefix)
    if shutil.which("cmake") is None or not (prefix / "share" / "rosidl_default_generators").is_dir():
        pytest.skip("rosidl generators are not installed in this venv (ros-<distro>-rosidl-default-generators + "
                    "ament-cmake + the CMake path fix); the typed ~/policy_status is optional")
    src = write_package(tmp_path / PACKAGE, REPO_ROOT / "msg")
    install = tmp_path / "install"
    from wallx_ros.cli.interfaces_package import build

    build(src, install)
    site = next(install.glob("lib/python*/site-packages"))
    env = subprocess_env({"PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)]),
                          "LD_LIBRARY_PATH": os.pathsep.join([str(install / "lib"),
                                                              os.environ.get("LD_LIBRARY_PATH", "")]),
                          "AMENT_PREFIX_PATH": os.pathsep.join([str(install),
                                                                os.environ.get("AMENT_PREFIX_PATH", "")])})
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)  # let the child re-run the wheels' library-path bootstrap
    code = ("from rclpy.serialization import serialize_message, deserialize_message\n"
            "from wallx_ros_msgs.msg import PolicyStatus\n"
            "m = PolicyStatus(state='holding', chunks_published=3, overhead_ms=1.5)\n"
            "r = deserialize_message(serialize_message(m), PolicyStatus)\n"
            "print(r.state, r.chunks_published, r.overhead_ms)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["holding", "3", "1.5"]
