"""``wallx-ros-robot-mapping DATASET --out DIR``: what WALL-OSS needs to know about the recorded robot.

Writes ``wallx_ros_robot.json`` (joint name of each state/action dimension, cameras, fps),
``wallx_dof_config.json`` (``dof_config`` / ``agent_pos_config`` padded to WALL-OSS's 20 dims),
``norm_stats.json`` (per-joint statistics, also padded to 20) and, with ``--urdf``, ``limits.json``.
``--checkpoint POLICY_DIR`` also makes a trained checkpoint self-contained for the policy node.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wallx_ros.core.errors import CoreError
from wallx_ros.core.output_folders import claim_folder
from wallx_ros.dataset.errors import DatasetError
from wallx_ros.dataset.wallx_mapping import describe_dataset, dof_groups, write_mapping
from wallx_ros.policy.checkpoints.checkpoint_packaging import TOOL, package_checkpoint
from wallx_ros.policy.errors import PolicyError

__all__ = ["main"]


def _groups(specs: list[str]) -> dict[str, list[str]] | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, _, joints = spec.partition("=")
        if not name or not joints:
            raise SystemExit(f"--group expects NAME=joint,joint,...; got {spec!r}")
        out[name] = [j for j in joints.split(",") if j]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wallx-ros-robot-mapping", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="LeRobot v3 dataset folder (root)")
    parser.add_argument("--out", type=Path, help="folder for the mapping files")
    parser.add_argument("--urdf", type=Path, help="robot URDF: joint limits, checked against the recorded range")
    parser.add_argument("--group", action="append", default=[], metavar="NAME=J1,J2",
                        help="dof_config group (repeat, in dimension order; default: by side and gripper)")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="trained wall_x policy folder to package for the policy node (repeatable)")
    parser.add_argument("--backbone", type=Path, help="local WALL-OSS backbone folder (default: the checkpoint's)")
    parser.add_argument("--force", action="store_true", help="write into an --out folder, and replace a checkpoint's "
                        "wallx_backbone/, that this tool did not create")
    args = parser.parse_args(argv)
    if args.out is None and not args.checkpoint:
        parser.error("give --out and/or --checkpoint")
    try:
        desc = describe_dataset(args.dataset)
        print(f"{desc.root}: {desc.episodes} episodes, {desc.frames} frames at {desc.fps:g} fps, cameras "
              f"{list(desc.cameras)}, {len(desc.state_names)} state / {len(desc.action_names)} action joints")
        print(f"dof_config: {dof_groups(desc.action_names, _groups(args.group))}")
        if args.out is not None:
            claim_folder(args.out, TOOL, args.force)
            for kind, path in write_mapping(desc, args.out, urdf=args.urdf, groups=_groups(args.group)).items():
                print(f"wrote {kind}: {path}")
        for ckpt in args.checkpoint:
            backbone = package_checkpoint(ckpt, desc.robot_mapping(), args.backbone, force=args.force)
            print(f"packaged {ckpt}: wallx_ros_robot.json, backbone files in {backbone}")
    except (DatasetError, PolicyError, CoreError) as err:
        print(f"error: {err}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
