"""Run traces and plots: the sim's JSONL run log and a rosbag2 (written here with rosbags) become PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wallx_ros.analysis.bag_trace import read_bag
from wallx_ros.analysis.errors import RunTraceError
from wallx_ros.analysis.run_log import RunLogWriter, read_run_log
from wallx_ros.cli.plot_run import main as plot_run

NAMES = ("j1", "j2")
MS = 1_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_log(path: Path, truncate: bool = False) -> None:
    with RunLogWriter(path, NAMES, [-1.0, -2.0], [1.0, 2.0], 50.0, {"scene": "test"}) as log:
        for k in range(1, 101):  # 2 s at 50 Hz, sim time = 4 x wall time
            t = k * 20 * MS
            log.step(t, 100.0 + t * 4e-9, np.array([np.sin(t * 1e-9), 0.5]), np.zeros(2), "tracking", 1.5)
            if k % 25 == 0:  # a chunk every 0.5 s, stamped 0.1 s before it arrives
                stamp = t - 100 * MS
                positions = np.array([[np.sin((stamp + i * 20 * MS) * 1e-9), 0.5] for i in range(1, 33)])
                log.trajectory(t, 100.0 + t * 4e-9, stamp, [], [i * 20 * MS for i in range(1, 33)], positions)
            if k % 5 == 0:
                log.frames(t, 40.0)
        log.trajectory(30 * MS, 100.0, 1, ["trajectory ends in the past"])
    if truncate:
        with open(path, "a") as f:
            f.write('{"event": "step", "t": 12')


def test_run_log_round_trip_with_latencies(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write_log(path, truncate=True)  # a killed writer leaves half a line
    trace = read_run_log(path)
    assert trace.joint_names == NAMES
    assert trace.state_positions.shape == (100, 2)
    np.testing.assert_allclose(trace.upper_limits, [1.0, 2.0])
    accepted = [t for t in trace.trajectories if t.accepted]
    assert len(accepted) == 4 and len(trace.trajectories) == 5
    assert trace.latencies_ms["trajectory age at arrival [sim ms]"] == pytest.approx([100.0] * 4)
    # sim runs at 4x wall speed in this log: 100 ms of sim time is 400 ms of wall time
    assert trace.latencies_ms["observation to command [wall ms]"] == pytest.approx([400.0] * 4, abs=1e-3)
    assert trace.latencies_ms["chunk inter-arrival [sim ms]"] == pytest.approx([500.0] * 3)
    assert len(trace.latencies_ms["render per frame [wall ms]"]) == 20
    # the executed path follows the chunks exactly in this log
    assert np.all(trace.tracking_error() < 1e-3)  # (linear interpolation of a sine: < 1e-4)


def test_not_a_run_log_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"event": "step"}\n')
    with pytest.raises(RunTraceError, match="start"):
        read_run_log(bad)
    with pytest.raises(RunTraceError, match="cannot read"):
        read_run_log(tmp_path / "missing.jsonl")


def test_plot_cli_writes_pngs_from_a_run_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run.jsonl"
    _write_log(log)
    assert plot_run([str(log), "-o", str(tmp_path / "plots")]) == 0
    for name in ("latency_histograms.png", "trajectories.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    out = capsys.readouterr().out
    assert "4 accepted / 1 rejected" in out and "trajectory age at arrival [sim ms]: n=4 p50=100.0" in out


def _write_bag(path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    Time, Duration = ts.types["builtin_interfaces/msg/Time"], ts.types["builtin_interfaces/msg/Duration"]
    Header = ts.types["std_msgs/msg/Header"]
    JointState = ts.types["sensor_msgs/msg/JointState"]
    Traj, Point = ts.types["trajectory_msgs/msg/JointTrajectory"], ts.types["trajectory_msgs/msg/JointTrajectoryPoint"]
    DiagArray = ts.types["diagnostic_msgs/msg/DiagnosticArray"]
    Status = ts.types["diagnostic_msgs/msg/DiagnosticStatus"]
    KeyValue = ts.types["diagnostic_msgs/msg/KeyValue"]
    empty = np.zeros(0)

    def header(ns: int) -> object:
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="")

    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        js = writer.add_connection("/joint_states", JointState.__msgtype__, typestore=ts)
        tr = writer.add_connection("/arm_controller/joint_trajectory", Traj.__msgtype__, typestore=ts)
        dg = writer.add_connection("/diagnostics", DiagArray.__msgtype__, typestore=ts)
        base = 5 * 10**9
        for k in range(50):
            t = base + k * 20 * MS
            # the robot publishes its joints in another order, plus one the policy does not use
            msg = JointState(header=header(t), name=["j2", "extra", "j1"], position=np.array([0.5, 9.0, k * 0.01]),
                             velocity=empty, effort=empty)
            writer.write(js, t, ts.serialize_cdr(msg, JointState.__msgtype__))
            if k % 10 == 0:
                points = [Point(positions=np.array([0.5, (k + i) * 0.01]), velocities=empty, accelerations=empty,
                                effort=empty, time_from_start=Duration(sec=0, nanosec=i * 20 * MS))
                          for i in range(1, 33)]
                traj = Traj(header=header(t - 150 * MS), joint_names=["j2", "j1"], points=points)
                writer.write(tr, t, ts.serialize_cdr(traj, Traj.__msgtype__))
                status = Status(level=0, name="wallx_policy", message="ok", hardware_id="",
                                values=[KeyValue(key="inference_ms", value="812.5"), KeyValue(key="mode", value="x")])
                diag = DiagArray(header=header(t), status=[status])
                writer.write(dg, t, ts.serialize_cdr(diag, DiagArray.__msgtype__))


def test_bag_trace_and_plots(tmp_path: Path) -> None:
    bag = tmp_path / "run_bag"
    _write_bag(bag)
    trace = read_bag(bag)
    assert trace.joint_names == ("j2", "j1")  # the trajectory's joint order
    assert trace.state_positions.shape == (50, 2)
    np.testing.assert_allclose(trace.state_positions[:3, 1], [0.0, 0.01, 0.02])
    assert len(trace.trajectories) == 5
    assert trace.latencies_ms["trajectory age at arrival [ms]"] == pytest.approx([150.0] * 5)
    assert trace.latencies_ms["wallx_policy: inference_ms"] == pytest.approx([812.5] * 5)
    assert "wallx_policy: mode" not in trace.latencies_ms
    assert plot_run([str(bag), "-o", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "trajectories.png").read_bytes().startswith(PNG_MAGIC)
    assert plot_run([str(tmp_path / "no_bag_here"), "-o", str(tmp_path / "p2")]) == 1
