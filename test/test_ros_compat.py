"""ros_compat.init: ``with ...:`` initialises and shuts rclpy down on Jazzy (rclpy 7) and Kilted (rclpy 9) alike."""

from __future__ import annotations

import pytest

from wallx_ros import ros_compat


def test_init_is_a_context_manager_that_shuts_down() -> None:
    from rclpy.context import Context

    context = Context()
    with ros_compat.init(args=[], context=context) as handle:
        assert context.ok()
        assert handle is not None
    assert not context.ok()


def test_shutdown_on_error_inside_the_block() -> None:
    from rclpy.context import Context

    context = Context()
    with pytest.raises(RuntimeError, match="boom"), ros_compat.init(args=[], context=context):
        raise RuntimeError("boom")
    assert not context.ok()
