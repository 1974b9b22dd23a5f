"""A fork server that runs pytest for mutmut without paying Python's and pytest's start-up per mutant.

mutmut 2 runs its test command once per mutant. On a busy 2-core machine a fresh ``python -m pytest`` costs
5-13 s before the first test; most of it is importing numpy, pytest and its plugins. The server imports them
once and forks a child per run; the child imports the (mutated) project code fresh, runs pytest and exits
with pytest's code::

    python scripts/mutation_runner.py serve SOCKET &            # the stack's Python, in the work folder
    python scripts/mutation_runner.py run SOCKET -- PYTEST_ARGS  # mutmut's --runner: exit code = pytest's

The server never imports ``wallx_ros``: the child must see the mutated file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

_CHILD_TIMEOUT_S = 180  # a mutant that loops forever: the child is stopped (SIGALRM), the run counts as failed


def serve(path: str) -> int:
    import hypothesis  # noqa: F401  (the point: imported once, shared by every forked run)
    import numpy  # noqa: F401
    import pytest
    import yaml  # noqa: F401

    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        conn, _ = server.accept()
        with conn:
            args = json.loads(conn.makefile().readline())
            pid = os.fork()
            if pid == 0:  # child: fresh imports of the project, pytest's exit code
                server.close()
                signal.alarm(_CHILD_TIMEOUT_S)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                try:
                    code = int(pytest.main(args))
                except BaseException:  # any failure of the run is a failed run
                    code = 99
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(f"{code}\n".encode())
            except OSError:
                pass  # the client was killed (mutmut's timeout)


def run(path: str, args: list[str]) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall((json.dumps(args) + "\n").encode())
    reply = client.makefile().readline().strip()
    return int(reply) if reply.lstrip("-").isdigit() else 98


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        return serve(sys.argv[2])
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        rest = sys.argv[3:]
        return run(sys.argv[2], rest[1:] if rest[:1] == ["--"] else rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
