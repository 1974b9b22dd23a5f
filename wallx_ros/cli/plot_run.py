"""wallx-ros-plot-run: turn a run (a wallx_ros sim run log, or a rosbag2 folder) into PNG plots.

    wallx-ros-plot-run RUN -o OUT_DIR [--trajectory-topic /arm_controller/joint_trajectory]

RUN is either the JSONL file the sim node writes with ``-p run_log:=run.jsonl`` or a rosbag2 folder holding
/joint_states, a JointTrajectory topic and optionally /diagnostics. Writes OUT_DIR/latency_histograms.png
and OUT_DIR/trajectories.png and prints a summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from wallx_ros.analysis.errors import AnalysisError
from wallx_ros.analysis.run_trace import RunTrace
from wallx_ros.core.output_folders import OutputFolderError, claim_folder

__all__ = ["load_run", "main"]


def load_run(run: Path, trajectory_topic: str | None = None, joint_states_topic: str | None = None) -> RunTrace:
    if run.is_dir():
        from wallx_ros.analysis.bag_trace import read_bag

        return read_bag(run, trajectory_topic, joint_states_topic)
    from wallx_ros.analysis.run_log import read_run_log

    return read_run_log(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wallx-ros-plot-run", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="sim run log (.jsonl) or rosbag2 folder")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder for the PNGs")
    parser.add_argument("--trajectory-topic", default=None, help="bag only: JointTrajectory topic (default: first)")
    parser.add_argument("--joint-states-topic", default=None, help="bag only: JointState topic (default: first)")
    parser.add_argument("--force", action="store_true", help="write into an --out folder this tool did not create")
    args = parser.parse_args(argv)
    from wallx_ros.analysis.plots import plot_latency_histograms, plot_trajectories

    try:
        claim_folder(args.out, "wallx-ros-plot-run", args.force)
        trace = load_run(args.run, args.trajectory_topic, args.joint_states_topic)
        written = [plot_latency_histograms(trace, args.out / "latency_histograms.png"),
                   plot_trajectories(trace, args.out / "trajectories.png")]
    except (AnalysisError, OutputFolderError) as err:
        print(f"wallx-ros-plot-run: {err}", file=sys.stderr)
        return 1
    accepted = sum(t.accepted for t in trace.trajectories)
    print(f"{trace.source}: {len(trace.state_time_ns)} joint states, {accepted} accepted / "
          f"{len(trace.trajectories) - accepted} rejected trajectories")
    for name, values in sorted(trace.latencies_ms.items()):
        print(f"  {name}: n={len(values)} p50={np.percentile(values, 50):.1f} p90={np.percentile(values, 90):.1f} ms")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
