"""Runs after the fact, ROS-free: run traces read from a sim run log (JSONL) or a rosbag2, and plots."""

from wallx_ros.analysis.run_trace import RunTrace, TrajectoryRecord

__all__ = ["RunTrace", "TrajectoryRecord"]
