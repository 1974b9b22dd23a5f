"""Which LeRobot / transformers is installed, the process preparation LeRobot needs, and the rules that differ by line.

Supported lines: LeRobot 0.4.4 (``kilted`` stack, transformers 4.49) and 0.6.x (``jazzy`` stack, transformers
5.4-5.5). Everything here is cheap (no LeRobot import); the package overview (``wallx_ros.lerobot``) has the
full table of differences and which module handles each.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from wallx_ros.lerobot.errors import BackboneWeightsMissingError

__all__ = [
    "BACKBONE_WEIGHTS_FILENAME",
    "FLOW_ENGINE_VALIDATED_LINES",
    "backbone_weights_required",
    "check_backbone_dir",
    "fast_generation_patch_needed",
    "fast_mode_needs_qwen_token_ids",
    "flow_engine_unsupported_reason",
    "installed_line",
    "lerobot_version",
    "prepare_runtime",
    "quiet_stdout",
    "transformers_version",
]

BACKBONE_WEIGHTS_FILENAME = "model.safetensors"


def prepare_runtime() -> None:
    """Make the process safe for offline LeRobot use. Idempotent; call before importing lerobot.

    * The hub is unreachable: force offline mode so nothing waits on network timeouts.
    * CPU torch + PyPI torchvision: torchvision's compiled ops link against CUDA torch and fail to load;
      ``import torchvision`` then dies on the missing ``torchvision::nms`` schema. Defining the schema
      first lets its pure-Python parts (transforms, used by LeRobot) import. CUDA torch builds (the
      jazzy stack's torch 2.11) load torchvision's ops normally and get no shim.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    _ensure_torchvision_importable()


def _ensure_torchvision_importable() -> None:
    import torch

    if torch.version.cuda is not None or importlib.util.find_spec("torchvision") is None:
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - present when torchvision's ops loaded or we ran before
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")  # type: ignore[no-untyped-call]
    for name in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):
            schema = f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
            lib.define(schema)  # type: ignore[no-untyped-call]
    _KEEP_ALIVE.append(lib)


_KEEP_ALIVE: list[Any] = []


def _dist_version(dist: str) -> tuple[int, int, int]:
    from importlib.metadata import version

    parts = [*version(dist).split("+")[0].split("."), "0", "0"][:3]
    return tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts)  # type: ignore[return-value]


@cache
def lerobot_version() -> tuple[int, int, int]:
    return _dist_version("lerobot")


@cache
def transformers_version() -> tuple[int, int, int]:
    return _dist_version("transformers")


def installed_line() -> str:
    """The supported LeRobot line installed here: ``"0.4"`` or ``"0.6"`` (checkpoint formats follow it)."""
    return "0.4" if lerobot_version() < (0, 5, 0) else "0.6"


class _Capture(io.StringIO):
    pass


@contextlib.contextmanager
def quiet_stdout() -> Iterator[io.StringIO]:
    """Capture LeRobot's ``print`` output (it prints load progress and load failures); yields the buffer."""
    buf = _Capture()
    with contextlib.redirect_stdout(buf):
        yield buf


def fast_mode_needs_qwen_token_ids() -> bool:
    """LeRobot 0.4.4's fast mode finds the answer by the hard-coded ids [151644, 77091]; 0.6 tokenises it."""
    return lerobot_version() < (0, 5, 0)


# -- the backbone model.safetensors rule ------------------------------------------------------------------
def backbone_weights_required() -> bool:
    """0.6 raises when the backbone folder has no ``model.safetensors``; 0.4.4 warned and kept random init.

    A policy folder's own ``model.safetensors`` holds every weight, so an EMPTY backbone file is enough
    (nothing is loaded from it). The tiny checkpoint and ``wallx-ros-convert-checkpoint --to 0.6`` write one.
    """
    return lerobot_version() >= (0, 5, 0)


def check_backbone_dir(backbone_dir: Path) -> None:
    """Raise a BackboneWeightsMissingError saying how to fix a backbone folder this LeRobot line cannot load."""
    weights = backbone_dir / BACKBONE_WEIGHTS_FILENAME
    if backbone_weights_required() and not weights.is_file():
        raise BackboneWeightsMissingError(
            f"{weights} is missing: LeRobot {'.'.join(map(str, lerobot_version()))} refuses a WALL-OSS backbone "
            "folder without model.safetensors (0.4.4 accepted it). If the policy folder was written by LeRobot "
            "0.4.x, convert it: wallx-ros-convert-checkpoint SRC DST --to 0.6"
        )


# -- fast mode: transformers >= 5.4 generate() and LeRobot 0.6's prepare_inputs_for_generation -------------
def fast_generation_patch_needed() -> bool:
    """True where stock fast mode fails: LeRobot 0.6's ``prepare_inputs_for_generation`` indexes
    ``cache_position``, which transformers >= 5.4's ``generate`` no longer passes (TypeError on None).
    LeRobot 0.4.4 with transformers 4.49 passes it and is left alone."""
    return lerobot_version() >= (0, 5, 0) and transformers_version() >= (5, 4, 0)


# LeRobot lines on which the fast flow engine was validated: bit-identical actions to stock with eager attention
# on CPU (test/test_flow_engine.py, test/test_vision_tower.py on the tiny checkpoints)
FLOW_ENGINE_VALIDATED_LINES = ((0, 4), (0, 6))


def flow_engine_unsupported_reason() -> str | None:
    """None if the fast flow engine was validated against the installed LeRobot line, else why not.

    Validated: LeRobot 0.4.x and 0.6.x (``FLOW_ENGINE_VALIDATED_LINES``). A new line keeps its WallX modules
    under other names/signatures: map them in ``wallx_internals`` and validate with test/test_flow_engine.py
    before adding it here.
    """
    if lerobot_version()[:2] not in FLOW_ENGINE_VALIDATED_LINES:
        lines = " and ".join(f"{major}.{minor}.x" for major, minor in FLOW_ENGINE_VALIDATED_LINES)
        return (f"fast_flow is validated on LeRobot {lines} only "
                f"(installed: {'.'.join(map(str, lerobot_version()))})")
    return None
