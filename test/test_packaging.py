"""The package installs the two ways ROS users need: a pip wheel into a prefix, and colcon in a workspace.

Both must put executables in lib/wallx_ros/ (where launch_ros looks), data files (launch/, config/,
msg/, package.xml) in share/wallx_ros/ and the ament index marker in place.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ros_harness import REPO_ROOT, subprocess_env

EXECUTABLES = ("policy_node", "wallx-ros-make-test-checkpoint", "sim_node", "diagnostics_markers",
               "wallx-ros-plot-run", "wallx-ros-convert-checkpoint", "wallx-ros-bag2dataset",
               "wallx-ros-dataset2bag")
SHARE_FILES = ("package.xml", "launch/policy.launch.py", "config/policy.yaml", "config/fastdds_loopback.xml",
               "launch/sim.launch.py", "config/sim.yaml", "config/gz_bridge.yaml", "config/topics_isaac.yaml",
               "config/wallx.rviz", "config/bag2dataset.yaml")


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if (REPO_ROOT / f).is_file()]


def _copy_source(dst: Path) -> Path:
    """A copy of the checkout (tracked + untracked, not ignored files): builds never touch the repo."""
    for rel in _tracked_files():
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    return dst


def _site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def test_wheel_installs_ros_layout(tmp_path: Path) -> None:
    src = _copy_source(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, env=subprocess_env())
    wheel = next((tmp_path / "dist").glob("wallx_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for exe in EXECUTABLES:
        assert any(n.endswith(f".data/data/lib/wallx_ros/{exe}") for n in names), names
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--prefix", str(prefix), str(wheel)],
                   check=True, env=subprocess_env())
    for exe in EXECUTABLES:
        path = prefix / "lib" / "wallx_ros" / exe
        assert path.is_file() and path.stat().st_mode & stat.S_IXUSR, f"{path} missing or not executable"
    for rel in SHARE_FILES:
        assert (prefix / "share" / "wallx_ros" / rel).is_file(), rel
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "wallx_ros").is_file()
    # ament_index finds the package, and the ROS executable runs from the installed copy
    env = subprocess_env({"AMENT_PREFIX_PATH": str(prefix), "PYTHONPATH": str(_site_packages(prefix))})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    share = subprocess.run([sys.executable, "-c", "from ament_index_python.packages import "
                            "get_package_share_directory as g; print(g('wallx_ros'))"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout.strip()
    assert Path(share) == prefix / "share" / "wallx_ros"
    run = subprocess.run([str(prefix / "lib" / "wallx_ros" / "wallx-ros-make-test-checkpoint"), "--help"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0 and "tiny random-weight" in run.stdout, run.stderr


@pytest.mark.skipif(shutil.which("colcon") is None, reason="colcon is not installed in this environment")
def test_colcon_build_installs_ros_layout(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _copy_source(ws / "src" / "wallx_ros")
    env = subprocess_env()
    env.pop("PYTHONPATH", None)  # a workspace build must not lean on the checkout
    build = subprocess.run(["colcon", "build", "--base-paths", "src", "--event-handlers", "console_direct-"],
                           cwd=ws, capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    # colcon must see an ament_python package (a malformed package.xml silently makes it plain python)
    listing = subprocess.run(["colcon", "list", "--base-paths", "src"], cwd=ws, capture_output=True, text=True,
                             env=env, check=True).stdout
    assert "(ros.ament_python)" in listing, listing
    install = ws / "install" / "wallx_ros"
    for exe in EXECUTABLES:
        assert os.access(install / "lib" / "wallx_ros" / exe, os.X_OK), exe
    for rel in SHARE_FILES:
        assert (install / "share" / "wallx_ros" / rel).is_file(), rel
    # `source install/setup.bash` then run the ROS executable, as a ROS user would
    script = (f"source {ws}/install/setup.bash && {install}/lib/wallx_ros/wallx-ros-make-test-checkpoint --help "
              "&& python -c \"from ament_index_python.packages import get_package_share_directory as g; "
              "print(g('wallx_ros'))\"")
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "tiny random-weight" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == str(install / "share" / "wallx_ros")
