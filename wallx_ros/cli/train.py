"""``wallx-ros-train [--wallx_ros.* options] [lerobot-train arguments]``: LeRobot's training, then packaging.

Runs ``lerobot.scripts.lerobot_train`` with the given arguments exactly as ``lerobot-train`` does
(after the two fixes in ``wallx_ros.lerobot.training.run_lerobot_train``), then makes every saved checkpoint
(``<output_dir>/checkpoints/<step>/pretrained_model``) loadable by the policy node: the robot mapping
of the training dataset (``wallx_ros_robot.json``) and a local copy of the backbone's config, tokenizer
and processor files (``wallx_backbone/``). Example (CPU, offline)::

    wallx-ros-train --dataset.repo_id=local/demos --dataset.root=/data/demos \\
        --policy.path=/models/wall_x_policy --policy.device=cpu --policy.push_to_hub=false \\
        --steps=1000 --batch_size=4 --output_dir=outputs/train/demos --wandb.enable=false

Options of wallx_ros (removed before LeRobot parses the rest; both off by default, see
``wallx_ros.policy.training_setup``):

    --wallx_ros.precision=float32     train in float32 (LeRobot's WallX is bf16: emulated, ~10x slower on
                                      CPUs without native bf16); the checkpoint still loads as usual
    --wallx_ros.freeze=GROUP[,GROUP]  keep these parameters at their initial values:
                                      vision_patch_embed | vision (the whole vision tower)

They are written to ``wallx_ros_training.json`` in every packaged checkpoint.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path

from wallx_ros.dataset.errors import DatasetError
from wallx_ros.dataset.wallx_mapping import describe_dataset
from wallx_ros.lerobot import training
from wallx_ros.policy.checkpoints.checkpoint_packaging import package_checkpoint
from wallx_ros.policy.checkpoints.tiny_checkpoint import CHECKPOINT_INFO_FILENAME
from wallx_ros.policy.errors import PolicyError
from wallx_ros.policy.training_setup import TrainingSetup

__all__ = ["OPTION_PREFIX", "TRAINING_SETUP_FILENAME", "main", "package_outputs", "split_options"]

OPTION_PREFIX = "--wallx_ros."
TRAINING_SETUP_FILENAME = "wallx_ros_training.json"


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def split_options(argv: list[str]) -> tuple[TrainingSetup, list[str]]:
    """Our ``--wallx_ros.NAME=VALUE`` options -> a TrainingSetup; the rest goes to LeRobot untouched."""
    ours: dict[str, str] = {}
    rest: list[str] = []
    for arg in argv:
        if not arg.startswith(OPTION_PREFIX):
            rest.append(arg)
            continue
        name, sep, value = arg[len(OPTION_PREFIX):].partition("=")
        if not sep or name not in ("precision", "freeze") or name in ours:
            raise PolicyError(f"{arg}: expected {OPTION_PREFIX}precision=float32 or "
                              f"{OPTION_PREFIX}freeze=GROUP[,GROUP] (each at most once)")
        ours[name] = value
    freeze = tuple(g.strip() for g in ours.get("freeze", "").split(",") if g.strip())
    return TrainingSetup(precision=ours.get("precision", "model"), freeze=freeze), rest


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
    try:
        setup, args = split_options(list(sys.argv[1:] if argv is None else argv))
    except PolicyError as err:
        print(f"wallx-ros-train: {err}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
    output_dir = _option(args, "--output_dir")
    if output_dir is None and not any(a in ("-h", "--help") for a in args):
        output_dir = f"outputs/train/wallx_{_dt.datetime.now():%Y%m%d_%H%M%S}"
        args.append(f"--output_dir={output_dir}")
    hook = None
    if not setup.is_default:
        def hook(policy: object) -> None:
            counts = setup.apply(policy)
            print(f"wallx_ros training setup {setup.as_dict()}: {counts['trainable']} trainable, "
                  f"{counts['frozen']} frozen parameters", flush=True)
    training.run_lerobot_train(args, policy_hook=hook)
    if output_dir is None:
        return 0
    try:
        for policy_dir in package_outputs(Path(output_dir)):
            (policy_dir / TRAINING_SETUP_FILENAME).write_text(json.dumps(setup.as_dict(), indent=2) + "\n")
            print(f"packaged for the policy node: {policy_dir}")
    except (DatasetError, PolicyError, OSError, KeyError, json.JSONDecodeError) as err:
        print(f"training finished, but packaging the checkpoints failed: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
