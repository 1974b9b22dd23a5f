"""House rules that code review would otherwise have to catch: lint clean, typed core, no rclpy below nodes."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ros_harness import REPO_ROOT

ROS_FREE_PACKAGES = ("core", "policy", "dataset", "sim", "analysis")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_is_clean() -> None:
    run = subprocess.run(["ruff", "check", "--output-format", "concise", "."], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_strict_on_ros_free_packages() -> None:
    pytest.importorskip("mypy")
    targets = [f"wallx_ros/{p}" for p in ROS_FREE_PACKAGES if (REPO_ROOT / "wallx_ros" / p).is_dir()]
    run = subprocess.run([sys.executable, "-m", "mypy", *targets], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("package", ROS_FREE_PACKAGES)
def test_ros_free_packages_never_import_rclpy(package: str) -> None:
    for path in sorted((REPO_ROOT / "wallx_ros" / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root not in ("rclpy", "launch", "launch_ros"), f"{path.relative_to(REPO_ROOT)} imports {name}"
                assert not name.endswith("_msgs.msg"), f"{path.relative_to(REPO_ROOT)} imports ROS messages ({name})"


def test_only_lerobot_compat_imports_lerobot() -> None:
    allowed = {REPO_ROOT / "wallx_ros" / "policy" / "lerobot_compat.py"}
    offenders = []
    for path in sorted((REPO_ROOT / "wallx_ros").rglob("*.py")):
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            mod = None
            if isinstance(node, ast.ImportFrom):
                mod = node.module
            elif isinstance(node, ast.Import):
                mod = node.names[0].name
            if mod and mod.split(".")[0] == "lerobot":
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {mod}")
    assert not offenders, "LeRobot must stay behind wallx_ros.policy.lerobot_compat: " + ", ".join(offenders)


def test_every_python_file_under_wallx_ros_is_in_a_package() -> None:
    for path in (REPO_ROOT / "wallx_ros").rglob("*.py"):
        assert (path.parent / "__init__.py").is_file(), f"{path.parent} lacks __init__.py"


def test_shared_files_exist() -> None:
    for rel in ("package.xml", "setup.py", "setup.cfg", "resource/wallx_ros", "README.md", ".ci/run",
                "scripts/setup.sh", "scripts/test.sh", "wallx_ros/py.typed"):
        assert (REPO_ROOT / rel).is_file(), rel
    assert Path(REPO_ROOT / "msg").is_dir() and Path(REPO_ROOT / "launch").is_dir()
