"""LeRobot's training entry point, run in this process with the fixes the stock ``lerobot-train`` lacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wallx_ros.lerobot.wallx_model import api

__all__ = ["run_lerobot_train"]


def run_lerobot_train(argv: list[str], policy_hook: Callable[[Any], None] | None = None) -> None:
    """LeRobot's training entry point (what ``lerobot-train ARGS`` runs), in this process, after two
    fixes the stock console script lacks: ``prepare_runtime`` (it cannot start on CPU-only torch with
    PyPI torchvision: ``operator torchvision::nms does not exist``) and importing the wall_x stack,
    whose saved processor steps are not registered otherwise (``--policy.path=<wall_x checkpoint>``
    fails with "Processor step 'wall_x_task_processor' not found in registry").

    ``policy_hook`` is called with the policy right after ``make_policy`` built it, before the optimizer
    collects its parameters (``wallx-ros-train``'s precision and freezing options); both lines import
    ``make_policy`` into ``lerobot_train``'s namespace, which is where it is wrapped for this run."""
    import sys

    api()
    from lerobot.scripts import lerobot_train

    saved = sys.argv
    sys.argv = ["lerobot-train", *argv]
    original = lerobot_train.make_policy
    if policy_hook is not None:
        def make_policy(*args: Any, **kwargs: Any) -> Any:
            policy = original(*args, **kwargs)
            policy_hook(policy)
            return policy

        lerobot_train.make_policy = make_policy
    try:
        lerobot_train.main()
    finally:
        sys.argv = saved
        lerobot_train.make_policy = original
