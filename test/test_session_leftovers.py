"""The session's clean-up finds what a test left running, wherever it was reparented, and a slow interpreter exit
prints the thread stacks (CI once waited its whole 90 minutes after both suites had printed "passed"). That
scripts/test.sh ends such a process is tested in test_test_script.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ros_harness import private_domain_id, wait_until
from session_leftovers import (
    SESSION_END_VARIABLE,
    SESSION_VARIABLE,
    RclpyContexts,
    kill_leftovers,
    leftovers,
    record_session_end,
    take_session_end_file,
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_an_orphan_in_a_session_of_its_own_is_found_and_killed(tmp_path: Path) -> None:
    token = f"orphan-test-{os.getpid()}-{time.monotonic_ns()}"
    pid_file = tmp_path / "orphan.pid"
    # the shell starts a sleeper in the background and exits: the sleeper is reparented, in another session,
    # with its output on the shell's (inherited) stdout, as a leaked node holds CI's pipe
    subprocess.run(["bash", "-c", f"sleep 300 & echo $! > {pid_file}"], check=True, start_new_session=True,
                   env={**os.environ, SESSION_VARIABLE: token}, timeout=30)
    orphan = int(pid_file.read_text())
    try:
        assert _alive(orphan)
        assert [leftover.pid for leftover in leftovers(token)] == [orphan]
        assert "sleep 300" in leftovers(token)[0].command
        assert leftovers(f"{token}-other") == [], "only the given session's processes"
        assert [leftover.pid for leftover in kill_leftovers(token)] == [orphan]
        assert wait_until(lambda: not _alive(orphan), 10), "the orphan survived SIGKILL"
        assert leftovers(token) == []
    finally:
        if _alive(orphan):
            os.kill(orphan, 9)


def test_a_slow_interpreter_exit_prints_the_thread_stacks() -> None:
    script = textwrap.dedent("""
        import threading, sys
        sys.path.insert(0, sys.argv[1])
        from session_leftovers import dump_stacks_if_exit_hangs
        never = threading.Event()
        threading.Thread(target=never.wait, args=(5.0,), name="stuck-worker").start()  # joined at exit
        dump_stacks_if_exit_hangs(0.5)
    """)
    run = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # faulthandler's dump: the main thread joining at exit, the worker in Event.wait
    assert "Timeout" in run.stderr and "_shutdown" in run.stderr and "in wait" in run.stderr, run.stderr


def test_the_session_end_is_written_whole_and_only_for_this_process(tmp_path: Path) -> None:
    end = tmp_path / "session_end"
    os.environ[SESSION_END_VARIABLE] = str(end)
    try:
        assert take_session_end_file() == end
        assert SESSION_END_VARIABLE not in os.environ, "a pytest started by a test would write it too"
    finally:
        os.environ.pop(SESSION_END_VARIABLE, None)
    record_session_end(end, 1)
    assert end.read_text().split() == ["1", str(os.getpid())]
    assert [p.name for p in tmp_path.iterdir()] == ["session_end"]


def test_the_stacks_of_a_slow_exit_reach_the_console_from_a_real_pytest(tmp_path: Path) -> None:
    # the hook as conftest.py uses it (from pytest_unconfigure), in a pytest whose only test leaves a (non-daemon)
    # thread running: the dump reaches the console through pytest's own output handling
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from session_leftovers import dump_stacks_if_exit_hangs

        def pytest_unconfigure(config):
            dump_stacks_if_exit_hangs(0.5)
    """))
    (tmp_path / "test_leaves_a_thread.py").write_text(textwrap.dedent("""
        import threading

        def test_leaves_a_thread():
            threading.Thread(target=threading.Event().wait, args=(4.0,), name="stuck-worker").start()
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "Timeout" in run.stderr and "_shutdown" in run.stderr and "in wait" in run.stderr, run.stdout + run.stderr


def test_a_context_left_running_is_shut_down_and_named() -> None:
    import rclpy

    contexts = RclpyContexts()
    contexts.install()
    try:
        left, closed = rclpy.Context(), rclpy.Context()
        left.init(args=[], domain_id=private_domain_id())
        closed.init(args=[], domain_id=private_domain_id())
        node = rclpy.create_node("left_running", context=left)  # a DDS participant with its threads
        closed.shutdown()
    finally:
        contexts.uninstall()
    running = contexts.shut_down_running()
    assert running == [os.environ["PYTEST_CURRENT_TEST"]], running  # this test, named as pytest names it
    assert not left.ok()
    assert contexts.shut_down_running() == []
    node.destroy_node()
