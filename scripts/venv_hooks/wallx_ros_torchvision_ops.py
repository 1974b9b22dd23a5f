"""Lets ``import torchvision`` (and so ``from lerobot.datasets.lerobot_dataset import LeRobotDataset``) work in a
venv with a CPU build of torch and torchvision from PyPI, whose compiled operators are linked against CUDA
torch and cannot load. torchvision's own import then dies on ``operator torchvision::nms does not exist``
(its Python side registers fake kernels for operators it expects the library to have defined).

Installed into the venv's site-packages by ``scripts/venv_hooks/install.py`` (run by ``scripts/setup.sh``)
with a ``.pth`` line that imports this module at interpreter start. It only adds a meta-path finder: nothing
is imported until the first ``import torchvision``, when, with a CPU torch whose torchvision operators are
missing, the ``nms`` / ``qnms`` schemas are declared first (what ``wallx_ros.lerobot.versions`` does for
wallx_ros itself). With a CUDA torch, or operators that load, it does nothing. Not part of the wallx_ros
package: user code needs no wallx_ros import.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

_KEEP: list[Any] = []  # the torch.library fragment must outlive this call


def _declare_missing_ops() -> None:
    import torch

    if torch.version.cuda is not None:  # a CUDA torch loads torchvision's operators itself
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - defined already (loaded operators, or wallx_ros.lerobot ran)
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name in ("nms", "qnms"):
        try:
            lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass
    _KEEP.append(lib)


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Runs once, at the first ``import torchvision``, then leaves the import to the normal finders."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name != "torchvision":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        try:
            _declare_missing_ops()
        except Exception as err:  # never break an interpreter start or an import over this
            print(f"wallx_ros_torchvision_ops: {type(err).__name__}: {err}", file=sys.stderr)
        return None


if not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path) and "torchvision" not in sys.modules:
    sys.meta_path.insert(0, _BeforeTorchvision())
