"""``wallx-ros-make-test-checkpoint OUT``: build the tiny random-weight WallX checkpoint offline."""

from __future__ import annotations

import argparse
import sys
import time

from wallx_ros.core.output_folders import OutputFolderError
from wallx_ros.policy.checkpoints.tiny_checkpoint import (
    ALOHA_JOINTS,
    DEFAULT_CAMERAS,
    TinyCheckpointSpec,
    build_tiny_checkpoint,
)

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wallx-ros-make-test-checkpoint",
        description="Build a tiny random-weight WALL-OSS (LeRobot wall_x) policy folder, fully offline. "
                    "For tests and demos only: it does not solve any task.",
    )
    parser.add_argument("out", help="output folder: new, empty, or written by this tool before (then replaced)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT even if it holds other data (everything in it is deleted)")
    parser.add_argument("--mode", choices=("diffusion", "fast"), default="diffusion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joints", default=",".join(ALOHA_JOINTS), help="comma-separated joint names")
    parser.add_argument("--cameras", default=",".join(DEFAULT_CAMERAS), help="comma-separated camera keys")
    parser.add_argument("--fps", type=float, default=50.0)
    parser.add_argument("--chunk-size", type=int, default=32)
    args = parser.parse_args(argv)
    joints = tuple(j for j in args.joints.split(",") if j)
    cameras = tuple(c for c in args.cameras.split(",") if c)
    spec = TinyCheckpointSpec(mode=args.mode, seed=args.seed, state_names=joints, action_names=joints,
                              cameras=cameras, fps=args.fps, chunk_size=args.chunk_size)
    start = time.monotonic()
    try:
        out = build_tiny_checkpoint(args.out, spec, force=args.force)
    except OutputFolderError as err:
        print(f"wallx-ros-make-test-checkpoint: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.mode} test checkpoint to {out} in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
