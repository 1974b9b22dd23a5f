"""Helper for test_checkpoint_conversion.py, run by EITHER stack's python in a subprocess.

    python test/xver_predict.py CHECKPOINT OUT.npz [--build MODE]

With ``--build`` it first builds the tiny checkpoint (MODE diffusion) at CHECKPOINT with this venv's LeRobot.
Then it loads CHECKPOINT through wallx_ros's WallXBackend (seed 0, 1 torch thread), predicts one chunk on the
fixed observation of ``observation()`` and writes the actions plus the LeRobot version to OUT.npz.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from wallx_ros.core.types import Observation
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS


def observation(state_dim: int = 14, hw: tuple[int, int] = (120, 160)) -> Observation:
    rng = np.random.default_rng(11)
    return Observation(images={c: rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=rng.normal(size=state_dim).astype(np.float32), instruction="insert the peg",
                       stamp_ns=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--build", choices=("diffusion",))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from wallx_ros.lerobot import versions
    from wallx_ros.policy import BackendConfig, load_backend
    from wallx_ros.policy.checkpoints.tiny_checkpoint import TinyCheckpointSpec, build_tiny_checkpoint

    if args.build:
        build_tiny_checkpoint(args.checkpoint, TinyCheckpointSpec(mode=args.build))
    backend = load_backend(BackendConfig(checkpoint_dir=args.checkpoint, allow_random_weights=True, seed=0))
    chunk = backend.predict_chunk(observation())
    np.savez(args.out, actions=chunk.actions, lerobot=np.array(".".join(map(str, versions.lerobot_version()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
