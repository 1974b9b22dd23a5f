"""Runs after the fact, ROS-free: run traces read from a sim run log (JSONL) or a rosbag2, plots, and the
open-loop evaluation of a policy against a dataset (``open_loop_report``)."""

from wallx_ros.analysis.run_trace import RunTrace, TrajectoryRecord

__all__ = ["RunTrace", "TrajectoryRecord"]
