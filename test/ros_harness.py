"""Real-ROS test harness: loopback-only DDS on a private domain, node subprocesses, publish/collect helpers.

``configure_ros_environment()`` must run before anything imports rclpy (conftest.py does it at import
time): DDS discovery is pinned to loopback (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, plus the
project's Fast DDS profile that binds UDP to 127.0.0.1 only) and each test session gets its own
``ROS_DOMAIN_ID`` so parallel sessions on one machine do not see each other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from wallx_ros.cli import fastdds_profile

REPO_ROOT = Path(__file__).resolve().parent.parent
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_loopback.xml"


_DOMAIN_LOCK: list[Any] = []  # keeps the lock file of this session's ROS_DOMAIN_ID open


def _claim_domain_id() -> str:
    """A ROS_DOMAIN_ID no other test session on this machine holds (an flock per id, held until exit).

    Fast DDS on Linux supports ids 0-101 (and 215-232) with default ports; 1-101 are tried here.
    """
    import fcntl

    start = os.getpid() % 101
    for offset in range(101):
        domain = 1 + (start + offset) % 101
        handle = open(os.path.join(tempfile.gettempdir(), f"wallx_ros_test_domain_{domain}.lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _DOMAIN_LOCK.append(handle)
        return str(domain)
    raise RuntimeError("all ROS domain ids 1-101 are held by other test sessions")


def private_domain_id() -> int:
    """Another ROS_DOMAIN_ID held by this session alone, for rcl contexts a test creates in its own process
    (fuzzed nodes): their participants and endpoints stay out of the session's domain, where a node named
    like a later test's node would otherwise answer (or shadow) that test's service calls."""
    return int(_claim_domain_id())


def remove_stale_fastdds_shm(shm_dir: Path = Path("/dev/shm")) -> int:
    """Unlink Fast DDS shared-memory files whose owner died; return how many files went.

    Fast DDS keeps an flock on ``<segment>_el`` while a participant uses a segment or a port. A process that
    was killed (a fault test, a timed-out run) leaves its files behind, and a new participant that reuses a
    stale port can wait on it: on this machine image topics then silently delivered nothing. A lock nobody
    holds marks the files as stale; live participants (other test sessions included) keep theirs.
    """
    import contextlib
    import fcntl

    removed = 0
    for lock in sorted(shm_dir.glob("fast*_el")):
        if not lock.name.startswith(("fastdds_", "fastrtps_")):
            continue
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: a live participant's
            base = lock.name[: -len("_el")]
            for name in (base, f"sem.{base}_mutex", lock.name):
                with contextlib.suppress(FileNotFoundError):
                    (shm_dir / name).unlink()
                    removed += 1
        finally:
            os.close(fd)
    return removed


def configure_ros_environment() -> dict[str, str]:
    """Set (in os.environ) the variables every ROS process of the test session needs; return them.

    The Fast DDS profile goes into the one variable this distribution's Fast DDS reads (Kilted warns about the
    old name in every process); the other one is removed."""
    domain = os.environ.get("WALLX_TEST_DOMAIN_ID") or _claim_domain_id()
    profile_variable = fastdds_profile.profile_variable()
    env = {
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",  # DDS must never leave loopback
        "ROS_DOMAIN_ID": domain,
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        profile_variable: str(FASTDDS_PROFILE),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }
    os.environ.update(env)
    for other in set(fastdds_profile.PROFILE_VARIABLES) - {profile_variable}:
        os.environ.pop(other, None)
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    os.environ.pop("ROS_STATIC_PEERS", None)
    return env


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for node subprocesses: the session's ROS settings and this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


class NodeProcess:
    """A node run as ``python -m <module> --ros-args --params-file <yaml>`` with its output in a log file."""

    def __init__(self, module: str, node_name: str, params: dict[str, Any], log_dir: Path,
                 remaps: dict[str, str] | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.module = module
        log_dir.mkdir(parents=True, exist_ok=True)
        fd, params_path = tempfile.mkstemp(prefix=f"{node_name}_", suffix=".yaml", dir=log_dir)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump({node_name: {"ros__parameters": params}}, f)
        self.log_path = log_dir / f"{node_name}_{os.getpid()}_{int(time.time() * 1000)}.log"
        args = [sys.executable, "-m", module, "--ros-args", "--params-file", params_path]
        for src, dst in (remaps or {}).items():
            args += ["-r", f"{src}:={dst}"]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=subprocess_env(extra_env), cwd=str(REPO_ROOT))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGINT (a clean ROS shutdown), then SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)


class Collector:
    """Keeps every message received on one topic; ``wait_for(n)`` blocks until n arrived."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout_s)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()


class RosTestNode:
    """An rclpy node spinning in a background thread, for publishing to and listening to nodes under test."""

    def __init__(self, name: str = "wallx_test_peer") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.node = rclpy.create_node(name)
        # one thread: the peer's callbacks only append to lists, and rclpy's MultiThreadedExecutor re-queues
        # tasks not yet started in a busy loop that, under load, starved the test's own thread of the GIL
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> Collector:
        collector = Collector()
        self.node.create_subscription(msg_type, topic, collector, qos)
        return collector

    def publisher(self, msg_type: Any, topic: str, qos: Any = 10) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout_s: float = 30.0) -> bool:
        return wait_until(lambda: publisher.get_subscription_count() >= count, timeout_s)

    def wait_for_publishers(self, topic: str, count: int = 1, timeout_s: float = 30.0) -> bool:
        return wait_until(lambda: self.node.count_publishers(topic) >= count, timeout_s)

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


@contextmanager
def running_node(module: str, node_name: str, params: dict[str, Any], log_dir: Path,
                 **kwargs: Any) -> Iterator[NodeProcess]:
    """Run a node for the duration of a ``with`` block; print its log if the block fails."""
    proc = NodeProcess(module, node_name, params, log_dir, **kwargs)
    try:
        yield proc
    except BaseException:
        proc.stop()
        sys.stderr.write(f"\n----- log of {module} ({proc.log_path}) -----\n{proc.output()[-8000:]}\n")
        raise
    else:
        proc.stop()
