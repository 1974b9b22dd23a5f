"""``wallx-ros-dataset2bag ROOT OUT``: LeRobot dataset -> rosbag2 (mcap) with the policy node's topics,
plus (with ``--checkpoint``) an open-loop report comparing the policy's chunks to the dataset's actions.

The bag replays into the policy node (``<camera>/image_raw`` or ``.../compressed``, ``joint_states``,
``wallx_policy/instruction``) for open-loop evaluation over ROS; the report runs the same backend directly on
the dataset's frames (no ROS needed) and writes per-joint errors and a PNG plot.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wallx_ros.core.errors import CoreError
from wallx_ros.core.output_folders import claim_folder
from wallx_ros.dataset.dataset_to_bag import ROUND_TRIP_CONFIG, BagExportConfig, dataset_to_bag
from wallx_ros.dataset.errors import DatasetError
from wallx_ros.policy.errors import PolicyError

__all__ = ["build_parser", "main"]

log = logging.getLogger("wallx_ros.dataset2bag")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wallx-ros-dataset2bag",
        description="Write a LeRobot dataset as a rosbag2 with the topics the wallx_ros policy node consumes, "
                    "and optionally report how a policy's predicted chunks compare with the dataset's actions.")
    p.add_argument("root", help="LeRobot dataset folder (meta/info.json inside)")
    p.add_argument("out", nargs="?", help="bag folder to create (must not exist); omit to only write the report")
    p.add_argument("--repo-id", help="dataset repo id (default local/<folder name>)")
    p.add_argument("--episodes", help="comma-separated episode indices (default: all)")
    p.add_argument("--camera-transport", choices=("raw", "compressed"), default="raw",
                   help="sensor_msgs/Image on <camera>/image_raw, or jpeg CompressedImage on .../compressed")
    p.add_argument("--namespace", default="/", help="prefix of every topic")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--compression", choices=("none", "message", "file"), default="none", help="zstd compression")
    p.add_argument("--checkpoint", help="policy folder: also write an open-loop report of its chunks vs the actions")
    p.add_argument("--report-dir", help="where the report goes (default: <out>_open_loop or <root>/open_loop)")
    p.add_argument("--allow-random-weights", action="store_true", help="accept a random-weight test checkpoint")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help="seed for deterministic flow noise (-1: free-running)")
    p.add_argument("--stride", type=int, default=0, help="frames between predictions (0: the chunk length)")
    p.add_argument("--max-chunks", type=int, default=16, help="at most this many predictions")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--force", action="store_true", help="write the report into a folder this tool did not create")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in argv:  # started by ros2 run / launch: ROS arguments are not ours
        argv = argv[:argv.index("--ros-args")]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[dataset2bag] %(levelname)s %(message)s")
    if not args.out and not args.checkpoint:
        print("error: give an output bag and/or --checkpoint (nothing to do)", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from wallx_ros.dataset.dataset_reader import DatasetReader

    episodes = [int(e) for e in args.episodes.split(",") if e.strip()] if args.episodes else None
    try:
        reader = DatasetReader(args.root, args.repo_id, episodes)
        if args.out:
            cfg = BagExportConfig(camera_transport=args.camera_transport, namespace=args.namespace,
                                  storage=args.storage, compression=args.compression)
            with tqdm(total=reader.num_frames, unit="frame", disable=args.no_progress, leave=False) as bar:
                summary = dataset_to_bag(reader, args.out, cfg, progress=bar.update)
            print(f"wrote {summary.path}: {summary.episodes} episodes, {summary.frames} frames, topics "
                  f"{sorted(summary.messages)}; convert back with --params-file {summary.path / ROUND_TRIP_CONFIG}")
        if args.checkpoint:
            from wallx_ros.analysis.open_loop_report import evaluate_open_loop, write_report
            from wallx_ros.policy import BackendConfig, load_backend

            backend = load_backend(BackendConfig(checkpoint_dir=Path(args.checkpoint), device=args.device,
                                                 allow_random_weights=args.allow_random_weights,
                                                 seed=None if args.seed < 0 else args.seed))
            report = evaluate_open_loop(reader, backend, checkpoint=str(args.checkpoint), stride=args.stride,
                                        max_chunks=args.max_chunks)
            out_dir = Path(args.report_dir) if args.report_dir else (
                Path(f"{args.out}_open_loop") if args.out else Path(args.root) / "open_loop")
            paths = write_report(report, claim_folder(out_dir, "wallx-ros-dataset2bag", args.force))
            print(f"open-loop report: {report.chunks} chunks, MAE {report.mae_overall:.4g} -> "
                  f"{paths['markdown']}, {paths['png']}")
    except KeyboardInterrupt:
        print("interrupted: the bag was not written (an unfinished bag is removed)", file=sys.stderr)
        return 130
    except (DatasetError, CoreError, PolicyError, OSError) as err:  # CoreError: OutputFolderError too
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
