"""Session-wide test setup: loopback-only ROS environment (before rclpy loads), shared fixtures."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_harness import RosTestNode, configure_ros_environment, remove_stale_fastdds_shm
from session_leftovers import (
    Leftover,
    RclpyContexts,
    dump_stacks_if_exit_hangs,
    kill_leftovers,
    mark_session,
    record_session_end,
    take_session_end_file,
)

configure_ros_environment()  # must precede any rclpy import in this process and its children
remove_stale_fastdds_shm()  # files of killed processes (earlier runs) can stall new participants' topics
_SESSION_TOKEN = mark_session()  # every process the session starts carries it (see session_leftovers)
_SESSION_END_FILE = take_session_end_file()
_killed_leftovers: list[Leftover] = []
_rclpy_contexts = RclpyContexts()
_rclpy_contexts.install()
_running_contexts: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Kill what the tests left running (it would hold CI's output pipe open after the summary), then leave the
    verdict for scripts/test.sh, which ends a process that hangs at exit."""
    _killed_leftovers.extend(kill_leftovers(_SESSION_TOKEN))
    _running_contexts.extend(_rclpy_contexts.shut_down_running())
    if _SESSION_END_FILE is not None:
        record_session_end(_SESSION_END_FILE, int(exitstatus))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    threads = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:  # what may still run while the interpreter exits (a thread spinning rclpy, a pool's worker)
        terminalreporter.section("Python threads still running at the end of the session")
        for thread in threads:
            terminalreporter.line(f"{thread.name} ({'daemon' if thread.daemon else 'joined at exit'}): "
                                  f"{getattr(thread, '_target', None)!r}"[:300])
    if _running_contexts:
        terminalreporter.section("rclpy contexts the tests left running (shut down)", yellow=True)
        for origin in _running_contexts:
            terminalreporter.line(f"initialised by {origin}")
    if _killed_leftovers:
        terminalreporter.section("processes the tests left running (killed)", yellow=True)
        for leftover in _killed_leftovers:
            terminalreporter.line(f"pid {leftover.pid}: {leftover.command[:300]}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """A hang at interpreter exit (a pool thread the interpreter joins) prints the thread stacks."""
    dump_stacks_if_exit_hangs()


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """The CI machines have 2 shared cores: more torch threads only make timings collapse. Only where a test module
    imported torch (collection runs first): a run of the ROS-free core tests does not pay torch's import (seconds
    per run: the mutation runs start pytest once per mutant)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ros() -> Iterator[RosTestNode]:
    """rclpy initialised for one test module, with a peer node spinning in the background. Per module, not per
    session: a module's subscriptions, clients and in-process nodes on the default context then cannot
    disturb the next module's service calls (CI saw lifecycle calls go unanswered late in the session)."""
    import rclpy

    remove_stale_fastdds_shm()  # left by node processes an earlier module killed
    rclpy.init()
    peer = RosTestNode()
    yield peer
    peer.close()
    rclpy.shutdown()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny diffusion-mode WallX checkpoint, built once per session (a few seconds on CPU)."""
    from wallx_ros.policy.checkpoints.tiny_checkpoint import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_diffusion")


@pytest.fixture(scope="session")
def tiny_fast_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny fast-mode WallX checkpoint (20 action dims, Qwen token ids on LeRobot 0.4.4).

    Seed 1: with seed 0 the random model's greedy token happens to be the DCT tokenizer's zero
    coefficient, so every chunk decodes to exactly zero, which LeRobot reports as a decoding failure.
    """
    from wallx_ros.policy.checkpoints.tiny_checkpoint import TinyCheckpointSpec, build_tiny_checkpoint

    spec = TinyCheckpointSpec(mode="fast", seed=1)
    return build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_fast", spec)
