"""The session's clean-up finds what a test left running, wherever it was reparented, and a hung interpreter exit
ends with the stacks printed (CI once waited its whole 90 minutes after both suites had printed "passed")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from ros_harness import wait_until
from session_leftovers import SESSION_VARIABLE, kill_leftovers, leftovers


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


def test_a_hung_interpreter_exit_prints_the_stacks_and_ends() -> None:
    script = textwrap.dedent("""
        import threading, sys
        sys.path.insert(0, sys.argv[1])
        from session_leftovers import bound_interpreter_exit
        never = threading.Event()
        threading.Thread(target=never.wait, name="stuck-worker").start()  # joined at exit: would hang forever
        bound_interpreter_exit(1.0)
    """)
    run = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "Timeout" in run.stderr and "wait" in run.stderr, run.stderr  # faulthandler's dump names the frames
