"""Read a RunTrace from a rosbag2 (mcap or sqlite3, via ``rosbags``: no ROS install needed).

Executed positions come from the JointState topic, commanded chunks from the JointTrajectory topic,
latency series from every ``/diagnostics`` key that holds milliseconds (keys containing ``ms``), and the
arrival age of each trajectory from the bag's receive time when it is on the same clock as the stamps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from wallx_ros.analysis.errors import RunTraceError
from wallx_ros.analysis.run_trace import RunTrace, TrajectoryRecord

__all__ = ["read_bag"]

_JOINT_STATE = "sensor_msgs/msg/JointState"
_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
_DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"
_SAME_CLOCK_NS = 3600 * 10**9  # receive time and stamps further apart than this are on different clocks


def _ns(t: Any) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def _pick(reader: Any, msgtype: str, topic: str | None) -> list[Any]:
    conns = [c for c in reader.connections if c.msgtype == msgtype and (topic is None or c.topic == topic)]
    if topic is None and conns:
        first = sorted({c.topic for c in conns})[0]
        conns = [c for c in conns if c.topic == first]
    return conns


def read_bag(path: str | os.PathLike[str], trajectory_topic: str | None = None,
             joint_states_topic: str | None = None) -> RunTrace:
    """Read a rosbag2 folder. Topics default to the first one of each message type."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
        reader.open()
    except Exception as err:  # rosbags raises several unrelated types for unreadable bags
        raise RunTraceError(f"cannot open {path} as a rosbag2 folder: {err}") from err
    try:
        states = _pick(reader, _JOINT_STATE, joint_states_topic)
        trajs = _pick(reader, _TRAJECTORY, trajectory_topic)
        diags = _pick(reader, _DIAGNOSTICS, None)
        if not states:
            raise RunTraceError(f"{path} has no sensor_msgs/JointState topic {joint_states_topic or ''}".strip())
        raw_trajs: list[tuple[int, Any]] = []
        raw_states: list[tuple[int, Any]] = []
        trace_latency: list[tuple[str, float]] = []
        for conn, log_ns, data in reader.messages(connections=[*states, *trajs, *diags]):
            msg: Any = reader.deserialize(data, conn.msgtype)
            if conn.msgtype == _TRAJECTORY:
                raw_trajs.append((int(log_ns), msg))
            elif conn.msgtype == _JOINT_STATE:
                raw_states.append((int(log_ns), msg))
            else:
                for status in msg.status:
                    for kv in status.values:
                        if "ms" not in kv.key:
                            continue
                        try:
                            trace_latency.append((f"{status.name}: {kv.key}", float(kv.value)))
                        except ValueError:
                            continue
    finally:
        reader.close()

    names = tuple(raw_trajs[0][1].joint_names) if raw_trajs else tuple(raw_states[0][1].name)
    times, rows = [], []
    for _log_ns, msg in raw_states:
        where = {n: i for i, n in enumerate(msg.name)}
        if all(n in where for n in names) and len(msg.position) == len(msg.name):
            times.append(_ns(msg.header.stamp))
            rows.append([float(msg.position[where[n]]) for n in names])
    if not rows:
        raise RunTraceError(f"no JointState in {path} carries all of the joints {list(names)}")
    trace = RunTrace(joint_names=names, state_time_ns=np.array(times, dtype=np.int64),
                     state_positions=np.array(rows, dtype=np.float64), source=str(path))
    for log_ns, msg in raw_trajs:
        if set(msg.joint_names) != set(names) or not msg.points:
            continue
        order = [list(msg.joint_names).index(n) for n in names]
        positions = np.array([np.asarray(p.positions, dtype=np.float64)[order] for p in msg.points])
        stamp = _ns(msg.header.stamp)
        same_clock = abs(log_ns - stamp) < _SAME_CLOCK_NS
        trace.trajectories.append(TrajectoryRecord(
            arrival_ns=log_ns if same_clock or stamp == 0 else stamp, stamp_ns=stamp,
            times_ns=np.array([_ns(p.time_from_start) for p in msg.points], dtype=np.int64),
            positions=positions))
        if same_clock and stamp != 0:
            trace.add_latency("trajectory age at arrival [ms]", (log_ns - stamp) * 1e-6)
    for value in trace.inter_arrival_ms():
        trace.add_latency("chunk inter-arrival [ms]", value)
    for name, value in trace_latency:
        trace.add_latency(name, value)
    return trace
