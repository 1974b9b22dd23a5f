"""Safe by default, over real DDS: the policy node never sends motion its limits do not bound.

* no limits anywhere (a checkpoint without action statistics, no parameters, no URDF): the node refuses to
  activate with one line and stays inactive; ``allow_unlimited_motion`` is the explicit, warned opt-out;
* limits derived from the checkpoint's own action statistics: the node activates and every published point
  lies within them, even with an adversarial model (``fault_policy_node``'s "adversarial" fault throws every row
  to the other side, and every chunk the other way than the last);
* position, velocity AND acceleration limits hold in every published trajectory, across chunk boundaries and in
  the streamed output, with that adversarial model;
* while active but not publishing, the node says why (wall-clock node fed simulated stamps; a camera topic with
  no publisher), and /diagnostics gives the same advice (use_sim_time, not "synchronise the clocks").
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from arriving_velocity import arriving_velocity
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from policy_sim_driver import S, SimDriver, call_service, status_values
from ros_harness import REPO_ROOT, RosTestNode, running_node, wait_until
from safetensors.numpy import load_file, save_file
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.limit_sources import stats_limits
from wallx_ros.nodes.ros_conversions import stamp_to_ns
from wallx_ros.policy.action_stats import load_action_stats
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

NODE = "/wallx_policy"
FPS = 50.0  # the tiny checkpoint's
LOWER, UPPER, VMAX, AMAX = -0.5, 0.5, 1.0, 4.0
BASE = {"allow_random_weights": True, "seed": 0, "num_threads": 1, "warmup": False, "instruction": "go",
        "diagnostics_rate_hz": 4.0}


@pytest.fixture(scope="module")
def statless_checkpoint(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with action min/max removed from its processors (mean/std kept: LeRobot still loads)."""
    out = tmp_path_factory.mktemp("statless") / "ckpt"
    shutil.copytree(tiny_checkpoint, out)
    for path in out.glob("policy_*processor*.safetensors"):
        tensors = load_file(str(path))
        save_file({k: v for k, v in tensors.items() if k not in ("action.min", "action.max")}, str(path))
    assert load_action_stats(out) is None
    return out


def _pulse(driver: SimDriver, done, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    """Simulated time in pulses of 0.03 s (0.3 s of wall time at rate 0.1), frozen for up to 5 s between them
    while the model works. The driver's default 15 s freezes made four chunks take 7 minutes in CI (a chunk comes
    only after 0.32 simulated s, ten pulses). (An earlier note blamed these pulses for an "acceleration across the
    boundary 8.0" under load; the cause was the node accelerating from the replaced segment at a row-grid point,
    see ``test_policy_control.test_acceleration_across_chunk_boundaries_holds_on_and_off_the_row_grid``.)"""
    return driver.pulse_until(done, timeout_s, rate=0.1, pulse_s=0.3, freeze_s=5.0)


def _lifecycle(ros: RosTestNode, transition: int) -> bool:
    req = ChangeState.Request()
    req.transition = Transition(id=transition)
    return bool(call_service(ros, ChangeState, f"{NODE}/change_state", req, timeout_s=300).success)


def _state(ros: RosTestNode) -> str:
    return str(call_service(ros, GetState, f"{NODE}/get_state", GetState.Request()).current_state.label)


# -- activation ---------------------------------------------------------------------------------------------
def test_no_limits_anywhere_refuses_activation_with_one_line(ros: RosTestNode, statless_checkpoint: Path,
                                                             tmp_path: Path) -> None:
    params = {**BASE, "checkpoint_dir": str(statless_checkpoint), "autostart": False}
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as proc:
        assert _lifecycle(ros, Transition.TRANSITION_CONFIGURE), proc.output()[-3000:]
        assert not _lifecycle(ros, Transition.TRANSITION_ACTIVATE)
        assert _state(ros) == "inactive"
        refused = [ln for ln in proc.output().splitlines() if "activation refused" in ln]
        assert len(refused) == 1, proc.output()[-3000:]
        assert "no position range for [" in refused[0] and "no max_velocity for [" in refused[0]
        assert "left_waist" in refused[0] and "allow_unlimited_motion" in refused[0]
    # with autostart (the default) the process ends with the same reason and a non-zero code
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", {**params, "autostart": True},
                      tmp_path / "autostart") as proc:
        assert proc.proc.wait(300) == 1
        assert "cannot start: activation refused" in proc.output()


def test_allow_unlimited_motion_activates_with_a_warning(ros: RosTestNode, statless_checkpoint: Path,
                                                         tmp_path: Path) -> None:
    params = {**BASE, "checkpoint_dir": str(statless_checkpoint), "allow_unlimited_motion": True}
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as proc:
        assert wait_until(lambda: "active: control started" in proc.output() or not proc.alive(), 300), \
            proc.output()[-3000:]
        assert proc.alive()
        assert "allow_unlimited_motion is true: motion is NOT bounded" in proc.output()
        assert _lifecycle(ros, Transition.TRANSITION_DEACTIVATE)
        assert _lifecycle(ros, Transition.TRANSITION_ACTIVATE)  # warned again at every activation
        assert wait_until(lambda: proc.output().count("allow_unlimited_motion is true") == 2, 30)


# -- limits hold with an adversarial model --------------------------------------------------------------------
def _fault_node(tmp_path: Path, params: dict[str, object]):  # type: ignore[no-untyped-def]
    fault_file = tmp_path / "fault.json"
    fault_file.write_text(json.dumps({"fault": "adversarial", "amplitude": 5.0}))
    env = {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'test'}", "WALLX_TEST_FAULT_FILE": str(fault_file)}
    return running_node("fault_policy_node", "wallx_policy", {**BASE, "use_sim_time": True, **params}, tmp_path,
                        extra_env=env)


def _absolute(msg: JointTrajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point times (integer ns on the ROS clock, as the node computes them: no float rounding decides which
    segment a time on the row grid belongs to), positions, velocities."""
    times = stamp_to_ns(msg.header.stamp) + np.array([stamp_to_ns(p.time_from_start) for p in msg.points], np.int64)
    return times, np.array([p.positions for p in msg.points]), np.array([p.velocities for p in msg.points])


def _check_trajectories(chunks: list[JointTrajectory], lower: np.ndarray, upper: np.ndarray, vmax: np.ndarray,
                        amax: float | None) -> None:
    """Every published point within the limits; segment speeds, point speeds and (with amax) the change of segment
    speed within them, inside each chunk and from the previous chunk: a chunk replaces the running plan one row
    before its first point, so it accelerates from the velocity the plan ARRIVES there with (at a point of the
    plan the segment before it; at or before its first point the step into it)."""
    eps = 1e-6
    previous = None
    dt_ns = round(S / FPS)
    dt = dt_ns / S
    for msg in chunks:
        t_ns, p, v = _absolute(msg)
        t = t_ns / S
        assert list(msg.joint_names) == list(ALOHA_JOINTS)
        assert np.all(p >= lower - eps) and np.all(p <= upper + eps), "position outside the limits"
        assert np.all(np.abs(v) <= vmax + eps) and np.all(v[-1] == 0.0), "point velocity over max_velocity"
        seg = np.diff(p, axis=0) / np.diff(t)[:, None]
        assert np.all(np.abs(seg) <= vmax * (1 + eps)), f"segment speed {np.abs(seg).max(axis=0)}"
        entry = np.zeros(p.shape[1])
        if previous is not None:
            pt_ns, pp, previous_entry = previous
            anchor_ns = int(t_ns[0]) - dt_ns
            anchor = np.array([np.interp(anchor_ns, pt_ns, pp[:, j]) for j in range(pp.shape[1])])
            arriving = arriving_velocity(pt_ns, pp, previous_entry, anchor_ns)
            entry = (p[0] - anchor) / dt
            assert np.all(np.abs(entry) <= vmax * (1 + eps)), "the step from the running plan is too fast"
            seg = np.vstack([entry, seg])
            if amax is not None:
                assert np.all(np.abs(entry - arriving) <= amax * dt * (1 + eps) + eps), \
                    f"acceleration across the boundary {np.abs(entry - arriving).max() / dt:.3f}"
        if amax is not None:
            acc = np.abs(np.diff(seg, axis=0)) / dt
            assert np.all(acc <= amax * (1 + eps) + eps), f"acceleration {acc.max():.3f} > {amax}"
            assert np.all(np.abs(seg[-1]) <= amax * dt * (1 + eps) + eps), "does not come to rest at its end"
        previous = (t_ns, p, entry)


def test_stats_derived_limits_activate_and_bound_an_adversarial_model(ros: RosTestNode, tiny_checkpoint: Path,
                                                                      tmp_path: Path) -> None:
    stats = load_action_stats(tiny_checkpoint)
    assert stats is not None
    derived = stats_limits(ActionMapping.build(ALOHA_JOINTS, ALOHA_JOINTS), stats.minimum, stats.maximum,
                           stats.chunk_size / FPS, 0.1)
    assert derived is not None
    chunks = ros.collect(JointTrajectory, f"{NODE}/joint_trajectory")
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(2000 * S)
    try:
        with _fault_node(tmp_path, {"checkpoint_dir": str(tiny_checkpoint)}) as proc:
            assert driver.wait_for_node(), proc.output()[-3000:]
            got = lambda: len([m for m in chunks.messages if len(m.points) > 1])  # noqa: E731
            assert _pulse(driver, lambda: got() >= 3 or not proc.alive(), 300), proc.output()[-3000:]
            out = proc.output()
            assert "active: control started" in out and "[fault injection] adversarial" in out
            assert ("joint limits: lower: checkpoint stats 14; upper: checkpoint stats 14; max_velocity: checkpoint "
                    "stats 14; max_acceleration: none 14") in out
            assert "rate-limited" in out and "clamped" in out  # the model's rows did break them
            _check_trajectories([m for m in chunks.messages if len(m.points) > 1], np.array(derived.lower),
                                np.array(derived.upper), np.array(derived.max_velocity), None)
    finally:
        driver.close()


@pytest.mark.timeout(900)  # four chunks, each after the execution horizon of sim time in 30 ms pulses (_pulse)
@pytest.mark.parametrize("output_mode", ["trajectory", "joint_state"])
def test_velocity_and_acceleration_never_exceeded_with_an_adversarial_model(ros: RosTestNode, tiny_checkpoint: Path,
                                                                           tmp_path: Path, output_mode: str) -> None:
    params = {"checkpoint_dir": str(tiny_checkpoint), "position_lower": [LOWER], "position_upper": [UPPER],
              "max_velocity": [VMAX], "max_acceleration": [AMAX], "output_mode": output_mode}
    chunks = ros.collect(JointTrajectory, f"{NODE}/joint_trajectory")
    stream = ros.collect(JointState, f"{NODE}/joint_commands")
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(3000 * S)
    n = len(ALOHA_JOINTS)
    try:
        with _fault_node(tmp_path, params) as proc:
            assert driver.wait_for_node(), proc.output()[-3000:]
            if output_mode == "trajectory":
                got = lambda: len([m for m in chunks.messages if len(m.points) > 1]) >= 4  # noqa: E731
                assert _pulse(driver, lambda: got() or not proc.alive(), 840), proc.output()[-3000:]
            else:  # the stream follows the clock: let it run slowly (a CPU chunk takes 0.1-0.3 s of sim time)
                assert _pulse(driver, lambda: len(stream.messages) > 0 or not proc.alive(), 300), \
                    proc.output()[-3000:]
                driver.rate = 0.1
                assert wait_until(lambda: len(stream.messages) >= 150 or not proc.alive(), 300), len(stream.messages)
                driver.rate = 0.0
            assert "max_acceleration exceeded" in proc.output(), "the adversarial model never tested the limit"
            if output_mode == "trajectory":
                _check_trajectories([m for m in chunks.messages if len(m.points) > 1], np.full(n, LOWER),
                                    np.full(n, UPPER), np.full(n, VMAX), AMAX)
                return
            msgs = sorted(stream.messages, key=lambda m: stamp_to_ns(m.header.stamp))
            t = np.array([stamp_to_ns(m.header.stamp) / S for m in msgs])
            p = np.array([m.position for m in msgs])
            v = np.array([m.velocity for m in msgs])
            assert np.all(p >= LOWER - 1e-9) and np.all(p <= UPPER + 1e-9)
            assert np.all(np.abs(v) <= VMAX + 1e-9)
            dt = np.diff(t)
            moving = dt > 0
            assert np.all(np.abs(np.diff(p, axis=0))[~moving] == 0.0), "a command moved without time passing"
            assert np.all(np.abs(np.diff(p, axis=0))[moving] <= VMAX * dt[moving, None] + 1e-9)
            acc = (np.abs(np.diff(v, axis=0))[moving] / dt[moving, None]).max()
            assert np.all(np.abs(np.diff(v, axis=0))[moving] <= AMAX * dt[moving, None] + 1e-9), acc
            # the checks above were not empty: the stream moved, and its acceleration reached the limit (the model
            # flips every row, so the filter accelerates at max_acceleration; how far the stream swings depends on
            # how much simulated time a chunk's inference takes: 0.011-0.034 rad seen, idle to loaded machine)
            swing = np.ptp(p, axis=0).max()
            assert swing > 1e-3 and acc >= 0.95 * AMAX, (swing, acc)
    finally:
        driver.close()


# -- why nothing moves ----------------------------------------------------------------------------------------
def test_waiting_node_says_which_input_is_missing_and_why(ros: RosTestNode, tiny_checkpoint: Path,
                                                         tmp_path: Path) -> None:
    """Wall-clock node, inputs stamped like a simulator's (1000 s), and face_view remapped to a topic nobody
    publishes: the INFO line names both, with the fixes (use_sim_time:=true; the remap)."""
    params = {**BASE, "checkpoint_dir": str(tiny_checkpoint), "waiting_log_period_s": 1.0}
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)  # publishes sim-like stamps (1000 s on)
    driver.rate = 1.0
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path,
                          remaps={"face_view/image_raw": "/nobody/image_raw"}) as proc:
            def explained() -> bool:
                assert proc.alive(), proc.output()[-3000:]
                return any("active but not publishing" in ln and "use_sim_time:=true" in ln
                           for ln in proc.output().splitlines())

            assert wait_until(explained, 300), proc.output()[-3000:]
            line = next(ln for ln in proc.output().splitlines() if "active but not publishing" in ln)
            assert "[INFO]" in line
            assert "face_view: no publisher on /nobody/image_raw" in line
            assert "-r face_view/image_raw:=/your/topic" in line
            assert "joint_states (/joint_states): latest stamp" in line and "look like simulated time" in line

            def transport_advice() -> bool:
                return any("use_sim_time:=true" in d.message for m in list(diagnostics.messages) for d in m.status
                           if d.name.endswith(": transport") and d.level == DiagnosticStatus.ERROR)

            assert wait_until(transport_advice, 60), "the transport diagnostic does not name use_sim_time"
            # throttled: one line per period, not one per control tick
            n = proc.output().count("active but not publishing")
            assert wait_until(lambda: proc.output().count("active but not publishing") > n, 30)
            assert proc.output().count("active but not publishing") < 60
            status = [status_values(d) for m in list(diagnostics.messages) for d in m.status
                      if d.name.endswith(": control")]
            assert status and status[-1]["state"] == "waiting"
    finally:
        driver.close()


def test_waiting_node_on_sim_time_names_the_missing_clock_and_wall_stamps(ros: RosTestNode, tiny_checkpoint: Path,
                                                                          tmp_path: Path) -> None:
    """The reverse: the node on simulated time gets wall-clock stamps. Before any /clock it says the clock is
    missing (its diagnostics timer runs on the steady clock); once /clock runs, it names use_sim_time:=false."""
    import threading
    import time as _time

    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from wallx_ros.nodes.ros_conversions import time_from_ns

    params = {**BASE, "checkpoint_dir": str(tiny_checkpoint), "waiting_log_period_s": 1.0, "use_sim_time": True}
    cams = {cam: ros.publisher(Image, f"/{cam}/image_raw", qos_profile_sensor_data) for cam in DEFAULT_CAMERAS}
    joints = ros.publisher(JointState, "/joint_states")
    clock = ros.publisher(Clock, "/clock")
    stop, with_clock = threading.Event(), threading.Event()

    def publish() -> None:
        frame = np.zeros((48, 64, 3), np.uint8)
        while not stop.is_set():
            stamp = _time.time_ns()
            for pub in cams.values():
                msg = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=frame.tobytes())
                msg.header.stamp = time_from_ns(stamp)
                pub.publish(msg)
            js = JointState(name=list(ALOHA_JOINTS), position=[0.0] * len(ALOHA_JOINTS))
            js.header.stamp = time_from_ns(stamp)
            joints.publish(js)
            if with_clock.is_set():
                clock.publish(Clock(clock=time_from_ns(1000 * S)))
            stop.wait(0.05)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as proc:
            def said(text: str) -> bool:
                assert proc.alive(), proc.output()[-3000:]
                return any("active but not publishing" in ln and text in ln for ln in proc.output().splitlines())

            assert wait_until(lambda: said("no /clock has arrived"), 300), proc.output()[-3000:]
            with_clock.set()
            assert wait_until(lambda: said("look like wall-clock time while this node runs on simulated time"), 120), \
                proc.output()[-3000:]
            line = [ln for ln in proc.output().splitlines() if "look like wall-clock time" in ln][-1]
            assert "run it with use_sim_time:=false, or the publisher with use_sim_time:=true" in line
    finally:
        stop.set()
        thread.join(5)
