"""What a finished test session left running, and a bound on how long the interpreter may take to exit.

CI runs each stack's pytest as ``pytest | sed``: the pipeline, and so CI, ends only when every process holding that
pipe has exited. A process a test started and never stopped (a node in a session of its own, a grandchild of a
killed script) keeps it open after pytest's summary, and so does a thread the interpreter joins at exit (a thread
pool's worker blocked in a callback). Either way CI waits until its own time limit and reports nothing about why.

Every process the session starts inherits ``WALLX_TEST_SESSION=<pytest pid>`` in its environment, however far
down and in whatever session or process group it runs. At the end of the session the ones still alive are
named and killed. If the interpreter then does not end within ``EXIT_STACKS_AFTER_S``, faulthandler prints every
thread's stack; ``scripts/test.sh`` kills a process that is still there later and keeps the session's verdict, which
``record_session_end`` leaves for it.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SESSION_VARIABLE = "WALLX_TEST_SESSION"
SESSION_END_VARIABLE = "WALLX_TEST_SESSION_END"  # set by scripts/test.sh: where the finished session's verdict goes
EXIT_STACKS_AFTER_S = 60.0  # from the end of the session (rclpy, torch and thread pools shut down in seconds)


@dataclass(frozen=True)
class Leftover:
    pid: int
    command: str


def mark_session() -> str:
    """Put this session's token into os.environ (children inherit it); return it."""
    token = str(os.getpid())
    os.environ[SESSION_VARIABLE] = token
    return token


def _environ_has(pid_dir: Path, entry: bytes) -> bool:
    try:
        return entry in (pid_dir / "environ").read_bytes().split(b"\0")
    except OSError:  # gone meanwhile, a zombie (empty environ), or not ours to read
        return False


def _command(pid_dir: Path) -> str:
    try:
        return (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def leftovers(token: str, proc: Path = Path("/proc")) -> list[Leftover]:
    """Live processes (other than this one) whose environment carries the session's token."""
    entry = f"{SESSION_VARIABLE}={token}".encode()
    found = []
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        if _environ_has(pid_dir, entry):
            found.append(Leftover(int(pid_dir.name), _command(pid_dir)))
    return sorted(found, key=lambda leftover: leftover.pid)


def kill_leftovers(token: str) -> list[Leftover]:
    """SIGKILL the session's live processes; return what was found (for the report)."""
    found = leftovers(token)
    for leftover in found:
        try:
            os.kill(leftover.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found


def take_session_end_file() -> Path | None:
    """The file test.sh watches, removed from os.environ: a pytest that a test starts must not write it."""
    value = os.environ.pop(SESSION_END_VARIABLE, "")
    return Path(value) if value else None


def record_session_end(path: Path, exit_status: int) -> None:
    """``<exit status> <pid>``, written whole (test.sh reads it as soon as it is not empty)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{exit_status} {os.getpid()}\n")
    os.replace(partial, path)


def dump_stacks_if_exit_hangs(after_s: float = EXIT_STACKS_AFTER_S) -> None:
    """If the interpreter is still alive ``after_s`` from now, print every thread's stack to the process's stderr.

    ``sys.__stderr__``: the process's own stderr, whatever a test framework has put in ``sys.stderr`` by then."""
    faulthandler.dump_traceback_later(after_s, exit=False, file=sys.__stderr__)


class RclpyContexts:
    """Every rclpy context the session initialises, with the test that did it.

    At the end of the session, contexts still running (never shut down) are shut down and named: their DDS
    participants' threads otherwise meet the interpreter's exit, and CI saw jazzy's pytest hang there (gdb: three
    participants alive). Strong references on purpose: a context dropped without shutdown is found too."""

    def __init__(self) -> None:
        self._contexts: list[tuple[Any, str]] = []
        self._lock = threading.Lock()
        self._original_init: Any = None

    def install(self) -> None:
        try:
            import rclpy.context  # pure Python; rclpy's extension loads at the first init
        except ImportError:  # a venv without ROS (the mutation runs of the ROS-free core)
            return

        original_init = rclpy.context.Context.init
        contexts = self

        def init(context: Any, *args: Any, **kwargs: Any) -> None:
            original_init(context, *args, **kwargs)
            with contexts._lock:
                contexts._contexts.append((context, os.environ.get("PYTEST_CURRENT_TEST", "(no test)")))

        rclpy.context.Context.init = init  # type: ignore[method-assign]
        self._original_init = original_init

    def uninstall(self) -> None:
        if self._original_init is not None:
            import rclpy.context

            rclpy.context.Context.init = self._original_init  # type: ignore[method-assign]
            self._original_init = None

    def shut_down_running(self) -> list[str]:
        """Shut down the contexts still running; return the tests that initialised them."""
        with self._lock:
            contexts, self._contexts = self._contexts, []
        running = []
        for context, origin in contexts:
            try:
                if not context.ok():
                    continue
            except Exception:  # rclpy's InvalidHandle: destroyed, so not running
                continue
            running.append(origin)
            try:
                context.try_shutdown()
            except Exception as err:  # a report, whatever rclpy says
                running[-1] += f" (shutdown failed: {err})"
        return running
