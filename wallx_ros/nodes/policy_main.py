"""Running the policy node as a process: command line, rclpy context, executor, and the hold on exit.

Kept apart from the node class so that the node reads as what it does, and this as how it is run: every
parameter override checked before ROS starts (``--help`` too), autostart, a multi-threaded executor, and
on SIGINT / SIGTERM a hold sent before the context goes away.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from rclpy import logging as rclpy_logging
from rclpy.executors import ExternalShutdownException
from rclpy.signals import SignalHandlerOptions

from wallx_ros import ros_compat
from wallx_ros.core.errors import ParameterError
from wallx_ros.nodes.executors import MultiThreadedExecutor
from wallx_ros.nodes.parameters import PARAMETER_ERROR_EXIT, command_line
from wallx_ros.nodes.policy_parameters import TABLE

__all__ = ["run_policy_node"]


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_policy_node(node_class: Any, args: list[str] | None = None) -> int:
    """Run ``node_class`` (the PolicyNode) until interrupted; returns the exit code."""
    # rclpy's own SIGINT handler would invalidate the context before we can send the exit hold: let SIGINT
    # (and SIGTERM) raise KeyboardInterrupt in the spinning thread instead, hold, then shut down.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)  # also when started with SIGINT ignored (nohup, &)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    code, overrides = command_line(TABLE, args)  # --help, and every override checked before ROS starts
    if code is not None:
        return code
    try:
        # rclpy.init() is no context manager on Jazzy: ros_compat.init is one on both distributions
        try:
            init = ros_compat.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        except RuntimeError as err:  # rcl cannot parse a ROS argument
            print(f"[{TABLE.node_name}] {str(err).splitlines()[0]}", file=sys.stderr)
            return PARAMETER_ERROR_EXIT
        with init:
            try:
                node = node_class(parameter_overrides=overrides)
            except ParameterError as err:
                rclpy_logging.get_logger(TABLE.node_name).fatal(f"cannot start: {err}")
                return PARAMETER_ERROR_EXIT
            if bool(node.get_parameter("autostart").value) and not node.autostart():
                reason = node.configure_error or node.activate_error or "activation failed"
                node.get_logger().fatal(f"cannot start: {reason}")
                node.destroy_node()
                return 1
            executor = MultiThreadedExecutor(num_threads=4)
            executor.add_node(node)
            try:
                executor.spin()
            except KeyboardInterrupt:
                node.get_logger().info("interrupted: holding and shutting down")
            finally:
                node.hold_on_exit()
                node.teardown()
                executor.shutdown(timeout_sec=2.0)
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0
