"""``wallx-ros-train [lerobot-train arguments]``: LeRobot's training entry point, then deployment packaging.

Runs ``lerobot.scripts.lerobot_train`` with the given arguments exactly as ``lerobot-train`` does
(after the two fixes in ``lerobot_compat.run_lerobot_train``), then makes every saved checkpoint
(``<output_dir>/checkpoints/<step>/pretrained_model``) loadable by the policy node: the robot mapping
of the training dataset (``wallx_ros_robot.json``) and a local copy of the backbone's config, tokenizer
and processor files (``wallx_backbone/``). Example (CPU, offline)::

    wallx-ros-train --dataset.repo_id=local/demos --dataset.root=/data/demos \\
        --policy.path=/models/wall_x_policy --policy.device=cpu --policy.push_to_hub=false \\
        --steps=1000 --batch_size=4 --output_dir=outputs/train/demos --wandb.enable=false
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

from wallx_ros.dataset.errors import DatasetError
from wallx_ros.dataset.wallx_mapping import describe_dataset
from wallx_ros.policy import lerobot_compat
from wallx_ros.policy.checkpoint_packaging import package_checkpoint
from wallx_ros.policy.errors import PolicyError
from wallx_ros.policy.tiny_checkpoint import CHECKPOINT_INFO_FILENAME

__all__ = ["main", "package_outputs"]


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def package_outputs(output_dir: Path) -> list[Path]:
    """Package every checkpoint of a training run for the policy node; returns the policy folders."""
    done = []
    for policy_dir in sorted(output_dir.glob("checkpoints/*/pretrained_model")):
        if policy_dir.parent.is_symlink():  # checkpoints/last
            continue
        train_cfg = json.loads((policy_dir / "train_config.json").read_text())
        root = train_cfg["dataset"].get("root")
        if not root:
            raise DatasetError(f"{policy_dir}: the training dataset has no local root; run "
                               "wallx-ros-robot-mapping DATASET --checkpoint on it instead")
        package_checkpoint(policy_dir, describe_dataset(Path(root)).robot_mapping())
        # fine-tuning a random-weight test model gives a random-weight test model: keep the marker
        start = train_cfg.get("policy", {}).get("pretrained_path")
        if start and (Path(start) / CHECKPOINT_INFO_FILENAME).is_file():
            info = json.loads((Path(start) / CHECKPOINT_INFO_FILENAME).read_text())
            if info.get("random_weights"):
                info["note"] = f"fine-tuned from the random-weight test model {start}; " + str(info.get("note", ""))
                (policy_dir / CHECKPOINT_INFO_FILENAME).write_text(json.dumps(info, indent=2) + "\n")
        done.append(policy_dir)
    return done


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
    output_dir = _option(args, "--output_dir")
    if output_dir is None and not any(a in ("-h", "--help") for a in args):
        output_dir = f"outputs/train/wallx_{_dt.datetime.now():%Y%m%d_%H%M%S}"
        args.append(f"--output_dir={output_dir}")
    lerobot_compat.run_lerobot_train(args)
    if output_dir is None:
        return 0
    try:
        for policy_dir in package_outputs(Path(output_dir)):
            print(f"packaged for the policy node: {policy_dir}")
    except (DatasetError, PolicyError, OSError, KeyError, json.JSONDecodeError) as err:
        print(f"training finished, but packaging the checkpoints failed: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
