"""ROS 2 distribution differences that node code meets: rclpy 7 (Jazzy) vs rclpy 9 (Kilted).

Nodes import rclpy's API through here where the distributions differ, so the same node file runs on both
supported stacks (and in a colcon workspace on either distribution). Known differences:

* ``rclpy.init()`` returns a context manager on Kilted (``with rclpy.init(args=args): ...`` shuts down
  on exit) and ``None`` on Jazzy. ``init()`` below returns a context manager on both.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import rclpy

__all__ = ["InitContext", "init"]


class InitContext:
    """What ``with init(...)`` yields on Jazzy: the initialised context, shut down (if still up) on exit."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def __enter__(self) -> InitContext:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # as Kilted's InitContextManager does: None means "the default context" to try_shutdown
        rclpy.try_shutdown(context=self.context)


def init(*, args: list[str] | None = None, context: Any = None, domain_id: int | None = None,
         signal_handler_options: Any = None) -> Any:
    """``rclpy.init`` usable as ``with ros_compat.init(args=args): ...`` on Jazzy and Kilted alike."""
    result = rclpy.init(args=args, context=context, domain_id=domain_id,
                        signal_handler_options=signal_handler_options)
    if result is not None and hasattr(result, "__exit__"):  # Kilted and newer: rclpy's own context manager
        return result
    return InitContext(context)
