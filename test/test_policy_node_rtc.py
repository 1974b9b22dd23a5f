"""Policy node with real-time chunking over real DDS, in simulated time (tiny checkpoint, CPU).

Each chunk after the first is computed with the running plan as its prefix: what the controller receives
continues the previous trajectory on the same time grid, and ~/status and /diagnostics report d, the prefix
error and the switch figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from policy_sim_driver import SimDriver, status_values
from ros_harness import RosTestNode, running_node, wait_until
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.nodes.ros_conversions import stamp_to_ns
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

NODE = "/wallx_policy"


def _times_ns(msg: JointTrajectory) -> np.ndarray:
    stamp = stamp_to_ns(msg.header.stamp)
    return np.array([stamp + p.time_from_start.sec * 1_000_000_000 + p.time_from_start.nanosec for p in msg.points])


def test_rtc_chunks_continue_the_running_plan(ros: RosTestNode, tiny_checkpoint: Path, tmp_path: Path) -> None:
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "seed": 0, "num_threads": 1,
              "instruction": "insert the peg", "warmup": False, "use_sim_time": True, "max_age_s": 0.5,
              "diagnostics_rate_hz": 4.0, "execution_horizon": 4, "control_rate_hz": 100.0, "rtc": True}
    trajectories = ros.collect(JointTrajectory, f"{NODE}/joint_trajectory")
    status = ros.collect(DiagnosticStatus, f"{NODE}/status")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(1000 * 1_000_000_000)
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as proc:
            assert driver.wait_for_node()

            def rtc_chunks() -> list[dict[str, str]]:
                assert proc.alive(), proc.output()[-4000:]
                return [v for v in map(status_values, list(status.messages)) if int(v["rtc_delay_steps"]) >= 0]

            def published() -> int:  # distinct chunks reported with RTC (status also goes out periodically)
                return len({v["chunks_published"] for v in rtc_chunks()})

            assert driver.pulse_until(lambda: published() >= 2, 300), \
                f"no RTC chunk; last status {status_values(status.messages[-1]) if status.messages else None}"
            assert "rtc" in proc.output().split("configured:")[-1].splitlines()[0]
            for values in rtc_chunks():
                assert float(values["rtc_prefix_error"]) < 1e-2
                for key in ("switch_position_jump", "switch_velocity_jump", "switch_peak_acceleration"):
                    assert math.isfinite(float(values[key]))
            # the controller receives trajectories that continue each other on one time grid: the newest chunk's
            # first points (the frozen ones) are the previous chunk's points at the same times
            assert wait_until(lambda: len([m for m in trajectories.messages if len(m.points) > 1]) >= 3, 30)
            chunks = [m for m in trajectories.messages if len(m.points) > 1]
            old, new = chunks[-2], chunks[-1]
            t_old, t_new = _times_ns(old), _times_ns(new)
            assert (stamp_to_ns(new.header.stamp) - stamp_to_ns(old.header.stamp)) % 20_000_000 == 0
            common = np.intersect1d(t_old, t_new[:2])
            assert len(common) == 2
            p_old = np.array([p.positions for p in old.points])[np.isin(t_old, common)]
            p_new = np.array([p.positions for p in new.points])[np.isin(t_new, common)]
            assert np.abs(p_new - p_old).max() < 1e-2

            def switch_diagnostics() -> dict[str, str]:
                for msg in reversed(list(diagnostics.messages)):
                    for st in msg.status:
                        if st.name.endswith("chunk switches") and st.values:
                            return status_values(st)
                return {}

            assert wait_until(lambda: "rtc_prefix_error" in switch_diagnostics(), 30)
            figures = switch_diagnostics()
            assert set(figures) == {"switch_position_jump", "switch_velocity_jump", "switch_peak_acceleration",
                                    "rtc_prefix_error"}
            assert len(figures["rtc_prefix_error"].split(" / ")) == 4  # last / p50 / p99 / max
    finally:
        driver.close()
