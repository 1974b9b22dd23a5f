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


def test_nodes_initialise_rclpy_through_ros_compat() -> None:
    """``with rclpy.init(...)`` works on Kilted only; a node written that way crashes at start on Jazzy."""
    import ast

    from ros_harness import REPO_ROOT

    offenders = []
    # the package, and the test/bench scripts that run as ROS processes
    paths = [*(REPO_ROOT / "wallx_ros").rglob("*.py"), *(REPO_ROOT / "test").glob("*.py"),
             *(REPO_ROOT / "bench").rglob("*.py")]
    for path in sorted(paths):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.With):
                for item in node.items:
                    call = item.context_expr
                    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                            and call.func.attr == "init" and isinstance(call.func.value, ast.Name)
                            and call.func.value.id == "rclpy"):
                        offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not offenders, f"use `with ros_compat.init(args=args):` (wallx_ros/ros_compat.py) instead: {offenders}"
