"""SIGINT and SIGTERM as a stop request that a second (or tenth) signal cannot turn into an abort.

rclpy's own handler makes every SIGINT a ``KeyboardInterrupt`` in the main thread. A node that saves data on
shutdown then loses it to the next signal, and one usually follows: ``ros2 launch`` without a terminal
(scripts, systemd, docker without -t) forwards SIGINT to nodes that already got one from the process group,
within ~0.1 s. Here the first signal sets :attr:`ShutdownSignals.requested`; later ones are logged as
"already stopping" and change nothing. Only SIGKILL aborts (and a node must survive that too).
Install before ``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["ShutdownSignals"]


class ShutdownSignals:
    """SIGINT/SIGTERM handlers that only set an event (``install`` them once, in the main thread)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_repeat: Callable[[int, int], None] | None = None) -> None:
        self.requested = threading.Event()
        self.count = 0
        self._on_repeat = on_repeat

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if not self.requested.is_set():
            self.requested.set()
        elif self._on_repeat is not None:
            self._on_repeat(signum, self.count)

    def wait(self, alive: Callable[[], bool] = lambda: True, poll_s: float = 0.2) -> None:
        """Block until a signal came (or ``alive()`` turns false: the node's executor died)."""
        while not self.requested.wait(poll_s):
            if not alive():
                return

    def ignore(self) -> None:
        """Everything is saved and the process exits: ignore further signals. (At interpreter exit Python puts
        the default handlers back, and a late second SIGINT would then kill a process that succeeded.)"""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def install(self) -> ShutdownSignals:
        """Take over SIGINT and SIGTERM for the rest of the process: a signal during the final save or after it
        must not raise either (so the handlers are never given back)."""
        for sig in self.SIGNALS:
            signal.signal(sig, self._handle)
        return self
