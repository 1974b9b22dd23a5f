"""How the package's nodes spin: ``spin_node`` (the main() they share) and a MultiThreadedExecutor without
rclpy's re-dispatch busy loop, for nodes that need reentrant callbacks.

rclpy's executor re-offers every task that has been handed out but has not started executing yet, and
does so without waiting. ``rclpy.executors.MultiThreadedExecutor`` hands a task to its thread pool and
immediately asks for more work, so until a pool thread starts the task the spinning thread loops: it
re-submits the same task again and again, grows its future list, and holds the GIL while doing it, which
delays the pool threads further (rclpy issue #1452, fixed upstream in rclpy 10.0.4, i.e. not in the Jazzy
or Kilted releases). On a loaded 2-core machine this fed on itself: a policy node spun at 95 % CPU while
inactive and a test process's main thread waited minutes for the GIL.

``MultiThreadedExecutor`` below is a drop-in replacement: after handing a task to the pool, the spinning
thread waits until a pool thread has started it, so a task is never queued twice and the executor blocks
in the wait set when there is nothing new. Coroutine callbacks that ``await`` still make rclpy re-offer
their task while they are suspended; the nodes of this package use none.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import rclpy.executors
import rclpy.logging
from rclpy.executors import (
    ConditionReachedException,
    Executor,
    ExternalShutdownException,
    ShutdownException,
    SingleThreadedExecutor,
    TimeoutException,
)
from rclpy.node import Node

from wallx_ros import ros_compat
from wallx_ros.core.errors import ParameterError
from wallx_ros.core.parameter_table import ParameterTable
from wallx_ros.nodes.parameters import PARAMETER_ERROR_EXIT, command_line

__all__ = ["MultiThreadedExecutor", "ros_init", "spin_node"]

NodeT = TypeVar("NodeT", bound=Node)

_START_POLL_S = 0.05  # how often the spinning thread re-checks shutdown while every pool thread is busy


class MultiThreadedExecutor(rclpy.executors.MultiThreadedExecutor):
    """rclpy's MultiThreadedExecutor, dispatching each ready task to its thread pool exactly once."""

    def __init__(self, num_threads: int | None = None, *, context: Any = None) -> None:
        super().__init__(num_threads=num_threads, context=context)
        self._in_pool: list[Any] = []  # tasks handed to the pool and not finished: exceptions are raised from here
        self.dispatched = 0  # tasks handed to the pool (tests check none is handed out twice)

    def _take_timer(self, tmr: Any) -> Any:
        """rclpy's take, skipping a timer that another thread cancelled after the wait set saw it ready.

        A lifecycle transition (a service callback on one pool thread) cancels the node's timers while another
        pool thread takes one that was due: rcl refuses ("timer is canceled"), rclpy raises, and the executor
        re-raises it in the spinning thread, ending the node. A cancelled timer is skipped instead, as rclpy
        already skips a destroyed one (and Kilted's rclpy a cancelled one: Jazzy's does not).
        """
        try:
            return super()._take_timer(tmr)
        except RuntimeError as err:  # rclpy's RCLError
            if "timer is canceled" in str(err) and tmr.is_canceled():
                return None
            raise

    def _spin_once_impl(self, timeout_sec: Any = None, wait_condition: Callable[[], bool] = lambda: False) -> None:
        try:
            task, _entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        if task.executing() or task.done():
            return  # re-offered while a pool thread picked it up: it is already being run
        started = threading.Event()

        def run() -> None:
            started.set()
            task()

        self._executor.submit(run)
        self.dispatched += 1
        self._in_pool.append(task)
        # Block until a pool thread has begun the task: until then rclpy would offer it again at once.
        while not started.wait(_START_POLL_S):
            if self._is_shutdown or not self.context.ok():
                break
        # a started task sets its executing flag within microseconds; wait for that too, without the GIL
        while started.is_set() and not (task.executing() or task.done()):
            time.sleep(0.0002)
        for finished in [t for t in self._in_pool if t.done()]:
            self._in_pool.remove(finished)
            finished.result()  # raise a callback's exception in the spinning thread, as rclpy does


def ros_init(args: list[str] | None, logger_name: str) -> Any:
    """``ros_compat.init`` that turns rcl's refusal of the command line into one line and ``None``."""
    try:
        return ros_compat.init(args=args)
    except RuntimeError as err:  # rclpy's RCLError / UnknownROSArgsError: a ROS argument rcl cannot parse
        print(f"[{logger_name}] {str(err).splitlines()[0]}", file=sys.stderr)
        return None


def spin_node(build: Callable[..., NodeT], *, args: list[str] | None, logger_name: str,
              table: ParameterTable | None = None,
              startup_errors: tuple[type[BaseException], ...] = (),
              executor: Callable[[], Executor] = SingleThreadedExecutor,
              on_exit: Callable[[NodeT], None] | None = None) -> int:
    """A node's main(): init rclpy, build the node, spin until Ctrl-C, clean up; returns the exit code.

    With the node's parameter ``table``: ``--help`` prints it and returns 0 without starting ROS, and the
    command line's overrides are checked first (a bad one: one line, exit code 2); the checked values reach
    ``build(parameter_overrides=...)``. A configuration error listed in ``startup_errors`` is logged as fatal
    and gives exit code 1 (a ParameterError: 2). ``on_exit`` runs (before the node is destroyed) however spinning
    ends. An error raised by spin once SIGINT has shut the context down (a callback still publishing, say) is
    part of the shutdown, not a failure. A node that ends the run itself (a batch job: demonstrations recorded,
    episodes evaluated) sets an int ``exit_code`` before shutting its context down: that is the exit code.
    """
    overrides: list[Any] = []
    exit_code = 0
    if table is not None:
        code, overrides = command_line(table, args)
        if code is not None:
            return code
    try:
        init = ros_init(args, logger_name)
        if init is None:
            return PARAMETER_ERROR_EXIT
        with init:  # rclpy.init() is no context manager on Jazzy
            try:
                node = build(parameter_overrides=overrides) if table is not None else build()
            except ParameterError as err:
                rclpy.logging.get_logger(logger_name).fatal(f"cannot start: {err}")
                return PARAMETER_ERROR_EXIT
            except startup_errors as err:
                rclpy.logging.get_logger(logger_name).fatal(f"cannot start: {err}")
                return 1
            spinner = executor()
            spinner.add_node(node)
            try:
                spinner.spin()
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
            except Exception:
                if node.context.ok():
                    raise
            finally:
                if on_exit is not None:
                    on_exit(node)
                own = getattr(node, "exit_code", None)
                if isinstance(own, int):
                    exit_code = own
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return exit_code
