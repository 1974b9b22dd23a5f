"""Make a ``lerobot-train`` checkpoint self-contained for the policy node.

A ``wall_x`` policy folder written by LeRobot (``checkpoints/<step>/pretrained_model``) holds every
weight in its ``model.safetensors`` but names its WALL-OSS backbone (config, tokenizer, image
processor) by ``pretrained_name_or_path`` - a hub id or a folder on the training machine - and does not
say which robot joint each dimension is. ``package_checkpoint`` copies the backbone's small files into
``wallx_backbone/`` (weights are not copied: the policy file provides them, and the backend refuses to
run if any tensor is missing) and writes ``wallx_ros_robot.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from wallx_ros.core.output_folders import replace_folder
from wallx_ros.core.robot_mapping import RobotMapping
from wallx_ros.policy.checkpoints.tiny_checkpoint import BACKBONE_SUBDIR
from wallx_ros.policy.errors import CheckpointError

__all__ = ["TOOL", "package_checkpoint"]

TOOL = "wallx-ros-robot-mapping"

_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def package_checkpoint(policy_dir: Path, mapping: RobotMapping, backbone_dir: Path | None = None,
                       force: bool = False) -> Path:
    """Write ``wallx_ros_robot.json`` and ``wallx_backbone/`` into ``policy_dir``; return the backbone copy."""
    from safetensors.torch import save_file

    policy_dir = Path(policy_dir)
    cfg_path = policy_dir / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{cfg_path} is missing or unreadable: give a LeRobot wall_x policy folder") from err
    if cfg.get("type") != "wall_x":
        raise CheckpointError(f"{cfg_path} is a {cfg.get('type')!r} policy, not wall_x")
    if not (policy_dir / "model.safetensors").is_file():
        raise CheckpointError(f"{policy_dir}/model.safetensors not found")
    dest = policy_dir / BACKBONE_SUBDIR
    src = Path(backbone_dir) if backbone_dir is not None else Path(str(cfg.get("pretrained_name_or_path", "")))
    if src.resolve() != dest.resolve():
        if not (src / "config.json").is_file():
            raise CheckpointError(
                f"backbone {str(src)!r} (config pretrained_name_or_path) is not a local folder with config.json; "
                "pass the local copy of the WALL-OSS backbone used for training")
        # a wallx_backbone/ this tool did not write is the user's: refused (OutputFolderError) unless force
        replace_folder(dest, TOOL, force)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*_WEIGHT_PATTERNS), dirs_exist_ok=True)
        save_file({}, str(dest / "model.safetensors"), metadata={"format": "pt"})
    out_dims = int(cfg["output_features"]["action"]["shape"][0])
    in_dims = int(cfg["input_features"]["observation.state"]["shape"][0])
    if (len(mapping.action_names), len(mapping.state_names)) != (out_dims, in_dims):
        raise CheckpointError(
            f"mapping has {len(mapping.state_names)} state / {len(mapping.action_names)} action names, the "
            f"checkpoint {in_dims} / {out_dims} dims")
    mapping.save(policy_dir)
    return dest
