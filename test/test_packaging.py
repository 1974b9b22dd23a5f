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
               "wallx-ros-dataset2bag", "wallx-ros-ctl")
SHARE_FILES = ("package.xml", "launch/policy.launch.py", "launch/record.launch.py", "launch/teleop.launch.py",
               "launch/wallx_launch_support.py", "config/policy.yaml", "config/fastdds_loopback.xml",
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


def _share_lookup(prefix: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """In a fresh process with only ``prefix`` as the ament prefix: the package's share folder, the launch files
    as ros2 launch finds them (os.walk of the share folder) and every config file those launch files name."""
    script = """
import ast, os
from pathlib import Path
from ament_index_python.packages import get_package_share_directory, get_package_prefix
share = Path(get_package_share_directory('wallx_ros'))
print(share)
print(get_package_prefix('wallx_ros'))
found = sorted(f for _, _, files in os.walk(share) for f in files if f.endswith('.launch.py'))
print(' '.join(found))
for name in found:
    tree = ast.parse((share / 'launch' / name).read_text())
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, 'id', '') == 'PathJoinSubstitution':
            parts = [e.value for e in call.args[0].elts if isinstance(e, ast.Constant)]
            if len(parts) == 2:  # [FindPackageShare('wallx_ros'), 'config', 'x.yaml']
                assert share.joinpath(*parts).is_file(), (name, parts)
"""
    env = subprocess_env({"AMENT_PREFIX_PATH": str(prefix)})
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)


def test_ament_prefix_script_registers_an_editable_install(tmp_path: Path) -> None:
    """scripts/setup.sh runs scripts/ament_prefix.py: the venv becomes an ament prefix for the checkout."""
    prefix = tmp_path / "venv"
    script = REPO_ROOT / "scripts" / "ament_prefix.py"
    before = _share_lookup(prefix, tmp_path)
    assert before.returncode != 0 and "PackageNotFoundError" in before.stderr  # what an editable install gives
    # a launcher left by an earlier run for an executable setup.py no longer lists goes away
    (prefix / "lib" / "wallx_ros").mkdir(parents=True)
    (prefix / "lib" / "wallx_ros" / "gone").write_text("#!/bin/sh\n# ROS executable launcher written by "
                                                       "scripts/ament_prefix.py\n")
    for _ in range(2):  # idempotent
        run = subprocess.run([sys.executable, str(script), "--prefix", str(prefix), "--python", sys.executable],
                             capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
    lookup = _share_lookup(prefix, tmp_path)
    assert lookup.returncode == 0, lookup.stderr
    share, found_prefix, launch_files = lookup.stdout.splitlines()
    assert Path(share) == prefix / "share" / "wallx_ros" and Path(found_prefix) == prefix
    assert launch_files.split() == sorted(p.name for p in (REPO_ROOT / "launch").glob("*.launch.py"))
    # editable: the share files are the checkout's
    assert (prefix / "share" / "wallx_ros" / "config" / "policy.yaml").resolve() == REPO_ROOT / "config" / "policy.yaml"
    assert not (prefix / "lib" / "wallx_ros" / "gone").exists()
    for exe in EXECUTABLES:
        assert os.access(prefix / "lib" / "wallx_ros" / exe, os.X_OK), exe
    run = subprocess.run([str(prefix / "lib" / "wallx_ros" / "wallx-ros-make-test-checkpoint"), "--help"],
                         capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path)
    assert run.returncode == 0 and "tiny random-weight" in run.stdout, run.stderr


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="not running in a venv (scripts/setup.sh builds one)")
def test_this_venv_is_an_ament_prefix_for_wallx_ros(tmp_path: Path) -> None:
    """The venv scripts/setup.sh built: ros2 launch / ros2 run find the package as soon as launch / ros2cli exist."""
    lookup = _share_lookup(Path(sys.prefix), tmp_path)
    assert lookup.returncode == 0, f"run scripts/setup.sh (it registers the venv in the ament index)\n{lookup.stderr}"
    share, _, launch_files = lookup.stdout.splitlines()
    assert Path(share) == Path(sys.prefix) / "share" / "wallx_ros"
    assert set(launch_files.split()) >= {"policy.launch.py", "sim.launch.py", "record.launch.py", "teleop.launch.py"}
    for exe in EXECUTABLES:
        assert os.access(Path(sys.prefix) / "lib" / "wallx_ros" / exe, os.X_OK), exe
