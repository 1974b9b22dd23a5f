"""``wallx-ros-bag2dataset BAG... --root OUT --params-file CONFIG``: rosbag2 recordings -> LeRobot v3 dataset.

Reads the recorder's parameters (``config/recorder.yaml`` form; ``config/bag2dataset.yaml`` documents the
bag-only ones), converts each bag (mcap or sqlite3, compressed or not; a folder of bags works too) and
appends the episodes to the dataset at ``--root``. Running it again adds only what is not there yet.
Exit code 0 only when every bag converted and the dataset was finalized; otherwise the dataset keeps the
episodes saved so far, is marked incomplete (``meta/WALLX_ROS_INCOMPLETE``) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wallx_ros.core.errors import CoreError
from wallx_ros.dataset.bag_config import BagConversionConfig, load_params_file
from wallx_ros.dataset.bag_conversion import ConversionReport, convert_bags
from wallx_ros.dataset.bag_reader import find_bags
from wallx_ros.dataset.conversion_ledger import INCOMPLETE_MARKER
from wallx_ros.dataset.episode_segmentation import SplitConfig
from wallx_ros.dataset.errors import BagConfigError, DatasetError

__all__ = ["build_parser", "main"]

log = logging.getLogger("wallx_ros.bag2dataset")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wallx-ros-bag2dataset",
        description="Convert rosbag2 recordings (mcap/sqlite3, no ROS install needed) into a LeRobot v3 dataset "
                    "with the recorder node's topic -> feature configuration.")
    p.add_argument("bags", nargs="+", help="rosbag2 folders, .mcap/.db3 files, or folders holding several bags")
    p.add_argument("--root", help="dataset folder (created, or appended to when it exists); default: the params "
                                   "file's root")
    p.add_argument("--params-file", required=True,
                   help="ROS params YAML with the recorder's parameters (/**: ros__parameters:), "
                        "e.g. config/bag2dataset.yaml or config/recorder.yaml")
    p.add_argument("--repo-id", help="dataset repo id (owner/name), default from the params file")
    p.add_argument("--fps", type=int, help="output frame rate (integer), default from the params file")
    p.add_argument("--instruction", help="task text for every episode (overrides the params file)")
    p.add_argument("--instruction-topic", help="std_msgs/String topic carrying the task text")
    p.add_argument("--episode-split", choices=("bag", "marker", "gap"), help="how episodes are delimited")
    p.add_argument("--episode-marker-topic", help="marker topic (std_msgs/String start/stop/discard or Bool)")
    p.add_argument("--episode-gap-s", type=float, help="gap that separates episodes (episode_split gap)")
    p.add_argument("--skip-non-monotonic", action="store_true", default=None,
                   help="drop messages whose header stamp does not increase instead of failing")
    p.add_argument("--no-videos", action="store_true", help="store PNG images instead of videos")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report-json", help="write the conversion report (per bag) to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def _config(args: argparse.Namespace) -> BagConversionConfig:
    params = load_params_file(args.params_file)
    cfg = BagConversionConfig.from_params(params)
    split = cfg.episode_split
    if args.episode_split or args.episode_marker_topic or args.episode_gap_s:
        split = SplitConfig(mode=args.episode_split or split.mode,
                            marker_topic=args.episode_marker_topic or split.marker_topic,
                            gap_s=args.episode_gap_s or split.gap_s)
    return cfg.with_overrides(repo_id=args.repo_id, fps=args.fps, instruction=args.instruction,
                              instruction_topic=args.instruction_topic, episode_split=split,
                              skip_non_monotonic=args.skip_non_monotonic,
                              use_videos=False if args.no_videos else None)


def _progress(disabled: bool) -> Any:
    from tqdm import tqdm

    def make(total: int, name: str) -> Any:
        return tqdm(total=total, desc=name, unit="msg", unit_scale=True, disable=disabled, leave=False,
                    dynamic_ncols=True)
    return make


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in argv:  # started by ros2 run / launch: ROS arguments are not ours
        argv = argv[:argv.index("--ros-args")]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="[bag2dataset] %(levelname)s %(message)s")
    report: ConversionReport | None = None
    root = Path(args.root or ".").expanduser()
    try:
        config = _config(args)
        if not args.root and not config.root:
            raise BagConfigError("no dataset folder: pass --root or set root in the params file")
        root = Path(args.root or config.root).expanduser()
        bags = [bag for path in args.bags for bag in find_bags(path)]
        log.info("%d bag(s) -> %s (%s, %d fps, episodes split by %s)", len(bags), root, config.repo_id,
                 config.fps, config.episode_split.mode)
        report = convert_bags(bags, config, root, progress=_progress(args.no_progress))
    except KeyboardInterrupt:
        print(f"interrupted: {_incomplete_note(root)}", file=sys.stderr)
        return 130
    except (DatasetError, CoreError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        print(_incomplete_note(root), file=sys.stderr)
        return 1
    finally:
        if args.report_json and report is not None:
            Path(args.report_json).write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(report.summary())
    return 0 if report.complete else 1


def _incomplete_note(root: Path) -> str:
    marker = root / "meta" / INCOMPLETE_MARKER
    if marker.exists():
        return f"the dataset at {root} is marked INCOMPLETE ({marker}); re-run to finish it"
    return f"nothing was written to {root}" if not (root / "meta").exists() else f"dataset at {root} unchanged"


if __name__ == "__main__":
    raise SystemExit(main())
