"""``wallx-ros-convert-checkpoint SRC DST --to 0.4|0.6``: make a wall_x policy folder load on the other LeRobot line."""

from __future__ import annotations

import argparse
import sys

from wallx_ros.policy.checkpoints.checkpoint_convert import LINES, convert_checkpoint, detect_layout
from wallx_ros.policy.errors import CheckpointConversionError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wallx-ros-convert-checkpoint",
        description="Copy a LeRobot wall_x policy folder (lerobot-train's pretrained_model/, or one made by "
                    "wallx-ros-make-test-checkpoint) into the file layout of another LeRobot line: 0.4 (LeRobot "
                    "0.4.4, the kilted stack) or 0.6 (LeRobot 0.6.x, the jazzy stack). Weights are copied "
                    "unchanged; SRC is never modified. Unknown layouts are refused.",
    )
    parser.add_argument("src", help="policy folder to read")
    parser.add_argument("dst", nargs="?", help="new folder to write (must not exist or be empty)")
    parser.add_argument("--to", choices=LINES, help="target LeRobot line")
    parser.add_argument("--check", action="store_true",
                        help="only report which LeRobot lines can load SRC as it is (no DST needed)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--ros-args" in argv:  # started by ros2 run / launch: ROS arguments are not ours
        argv = argv[:argv.index("--ros-args")]
    args = parser.parse_args(argv)
    try:
        if args.check:
            layout = detect_layout(args.src)
            for line in LINES:
                why = "; ".join(layout.blockers[line])
                verdict = f"needs conversion ({why})" if why else "no known incompatibility, loads as is"
                print(f"LeRobot {line}: {verdict}")
            return 0
        if args.dst is None or args.to is None:
            parser.error("DST and --to are required (or use --check)")
        report = convert_checkpoint(args.src, args.dst, args.to)
    except CheckpointConversionError as err:
        print(f"wallx-ros-convert-checkpoint: error: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
