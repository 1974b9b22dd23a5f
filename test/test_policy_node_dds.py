"""Policy node over real DDS, one node process for the module, driven in simulated time.

Covers: lifecycle (configure loads, activate starts, deactivate holds and stops), the trajectory equals
the backend's chunk for the same observation (joints by name, cameras resized at the edge), latency
compensation (stamp = observation time + offset, the controller skips past points), the stale-input
watchdog, bad inputs, pause/resume/e-stop, /diagnostics, ~/status and the ghost topic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from policy_sim_driver import S, SimDriver, call_service, image_msg, status_values
from ros_harness import Collector, NodeProcess, RosTestNode, running_node, wait_until
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.core.joint_trajectory_rules import validate
from wallx_ros.core.types import Observation
from wallx_ros.lerobot import versions
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

INSTRUCTION = "insert the peg into the socket"
NODE = "/wallx_policy"
MS = 1_000_000
MAX_AGE_S = 0.5
CONTROL_PERIOD_NS = 20 * MS  # 50 fps checkpoint, control_rate_hz 0 = fps
SLOW = 0.1  # simulated seconds per real second while the model runs (1-3 s CPU inference -> 0.1-0.3 s)


@dataclass
class Harness:
    ros: RosTestNode
    proc: NodeProcess
    driver: SimDriver
    trajectories: Collector
    status: Collector
    diagnostics: Collector
    ghost: Collector

    def chunks(self) -> list[JointTrajectory]:
        return [m for m in self.trajectories.messages if len(m.points) > 1]

    def holds(self) -> list[JointTrajectory]:
        return [m for m in self.trajectories.messages if len(m.points) == 1]

    def last_status(self) -> dict[str, str]:
        return status_values(self.status.messages[-1]) if self.status.messages else {}

    def wait_status(self, predicate, timeout_s: float = 60.0) -> dict[str, str]:  # type: ignore[no-untyped-def]
        def check() -> bool:
            assert self.proc.alive(), self.proc.output()[-4000:]
            return any(predicate(status_values(m)) for m in list(self.status.messages))
        assert wait_until(check, timeout_s), f"status never matched; last: {self.last_status()}"
        return next(status_values(m) for m in reversed(list(self.status.messages)) if predicate(status_values(m)))

    def wait_node_time(self, t_ns: int, timeout_s: float = 120.0) -> None:
        """Until the node published /diagnostics stamped ``t_ns`` or later on its own (simulated) clock: its
        control loop has run up to about then. A window measured in the node's time, not the test's."""
        def reached() -> bool:
            assert self.proc.alive(), self.proc.output()[-4000:]
            return any(stamp_to_ns(m.header.stamp) >= t_ns for m in list(self.diagnostics.messages)[-8:])

        assert wait_until(reached, timeout_s), f"the node's clock never reached {t_ns / S:.3f} s"

    def lockstep(self, done, timeout_s: float = 300.0, step_ns: int = CONTROL_PERIOD_NS) -> bool:  # type: ignore[no-untyped-def]
        """Advance the clock one control period at a time, with fresh (unmuted) inputs, and only after the node
        has acted on the previous step (two /diagnostics stamped at or after it: its control timer has run at
        that time), until ``done()``. The node's timing is then exact however slow the machine is."""
        self.driver.rate = 0.0
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            t = self.driver.now_ns + step_ns
            self.driver.set_time(t)
            self.driver.publish_inputs(t)

            def acted(t: int = t) -> bool:
                assert self.proc.alive(), self.proc.output()[-4000:]
                return sum(stamp_to_ns(m.header.stamp) >= t for m in list(self.diagnostics.messages)[-8:]) >= 2

            assert wait_until(acted, 120), f"the node never reached {t / S:.3f} s on its clock"
        return True

    def inputs_received(self) -> dict[str, int]:
        """Messages the node counted per input stream (its newest /diagnostics 'inputs' status)."""
        for msg in reversed(list(self.diagnostics.messages)):
            for d in msg.status:
                if d.name.endswith(": inputs"):
                    return {kv.key[: -len(".received")]: int(kv.value) for kv in d.values
                            if kv.key.endswith(".received")}
        return {}

    def run_until_running(self, timeout_s: float = 120.0) -> None:
        """Good inputs, time pulsed (frozen while the model runs) until a new chunk is published."""
        self.driver.camera_override.clear()
        self.driver.joint_override = None
        self.driver.muted.clear()
        count = len(self.chunks())
        assert self.driver.pulse_until(lambda: len(self.chunks()) > count or not self.proc.alive(), timeout_s), \
            f"no chunk within {timeout_s} s; status {self.last_status()}\n{self.proc.output()[-3000:]}"
        assert self.proc.alive(), self.proc.output()[-3000:]
        self.wait_status(lambda s: s["state"] == "running", 30)

    def lifecycle(self, transition: int) -> bool:
        req = ChangeState.Request()
        req.transition = Transition(id=transition)
        return bool(call_service(self.ros, ChangeState, f"{NODE}/change_state", req, timeout_s=300).success)

    def state(self) -> str:
        return str(call_service(self.ros, GetState, f"{NODE}/get_state", GetState.Request()).current_state.label)


@pytest.fixture(scope="module")
def harness(ros: RosTestNode, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "seed": 0, "num_threads": 1,
              "instruction": INSTRUCTION, "warmup": False, "autostart": False, "use_sim_time": True,
              "max_age_s": MAX_AGE_S, "sync_tolerance_s": 0.05, "diagnostics_rate_hz": 4.0,
              # limits too wide to bind: this module compares the published chunk with the model's own
              # (test_policy_safety_dds.py checks the limits)
              "position_lower": [-1e6], "position_upper": [1e6], "max_velocity": [1e9]}
    collectors = dict(trajectories=ros.collect(JointTrajectory, f"{NODE}/joint_trajectory"),
                      status=ros.collect(DiagnosticStatus, f"{NODE}/status"),
                      diagnostics=ros.collect(DiagnosticArray, "/diagnostics"),
                      ghost=ros.collect(JointState, f"{NODE}/ghost/joint_states"))
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(1000 * S)
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params,
                          tmp_path_factory.mktemp("policy_node")) as proc:
            h = Harness(ros, proc, driver, **collectors)
            yield h
            assert proc.alive(), "the node died during the module"
    finally:
        driver.close()


def test_configure_loads_the_model_and_an_inactive_node_publishes_nothing(harness: Harness) -> None:
    h = harness
    assert h.lifecycle(Transition.TRANSITION_CONFIGURE), h.proc.output()[-3000:]
    assert h.state() == "inactive"
    # engine=auto: fast_flow for the tiny flow checkpoint where the engine is validated (LeRobot 0.4), else stock
    expected = "stock" if versions.flow_engine_unsupported_reason() else "fast_flow"
    assert f"engine {expected}" in h.proc.output(), f"engine=auto should pick {expected} for the tiny flow checkpoint"
    assert h.driver.wait_for_node()
    # inputs keep coming until the (inactive) node says it took several of every stream: then nothing went out
    streams = {*DEFAULT_CAMERAS, "joint_states"}

    def taken() -> bool:
        h.driver.publish_inputs()
        received = h.inputs_received()
        return set(received) >= streams and all(received[k] >= 5 for k in streams)

    assert wait_until(taken, 120, interval_s=0.1), f"the node did not take the inputs: {h.inputs_received()}"
    assert h.trajectories.messages == []
    assert h.wait_status(lambda s: s["state"] == "inactive", 10)


def test_activate_publishes_the_backends_chunk(harness: Harness, tiny_checkpoint: Path) -> None:
    """Clock frozen at T while the model runs: header.stamp == observation stamp + latency_offset_s (0)."""
    h = harness
    assert h.lifecycle(Transition.TRANSITION_ACTIVATE)
    assert h.state() == "active"
    stamp = h.driver.now_ns
    deadline = time.monotonic() + 90
    while not h.chunks() and time.monotonic() < deadline:
        assert h.proc.alive(), h.proc.output()[-3000:]
        h.driver.publish_inputs(stamp)
        h.trajectories.wait_for(1, timeout_s=0.3)
    assert h.chunks(), f"no trajectory within 90 s\n{h.proc.output()[-3000:]}"
    traj = h.chunks()[0]

    backend = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))
    grid = backend.image_shapes  # type: ignore[attr-defined]
    images = {cam: resize_to_grid(img, grid[cam][1], grid[cam][2]) for cam, img in h.driver.images.items()}
    expected = backend.predict_chunk(Observation(images=images, state=h.driver.state.astype(np.float32),
                                                 instruction=INSTRUCTION, stamp_ns=stamp))
    assert list(traj.joint_names) == list(ALOHA_JOINTS)
    assert stamp_to_ns(traj.header.stamp) == stamp  # observation time + latency_offset_s (0)
    got = np.array([p.positions for p in traj.points])
    np.testing.assert_allclose(got, expected.actions, rtol=0, atol=1e-9)
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
    np.testing.assert_allclose(times, (np.arange(len(times)) + 1) / backend.fps, atol=1e-9)
    vel = np.array([p.velocities for p in traj.points])
    assert vel.shape == got.shape and np.all(vel[-1] == 0.0)
    np.testing.assert_allclose(vel[:-1], np.gradient(got, np.array(times), axis=0)[:-1], atol=1e-9)
    assert validate(traj.joint_names, traj.points, ALOHA_JOINTS, stamp, stamp_to_ns(traj.header.stamp)) == []


def test_latency_compensation_lets_the_controller_skip_past_points(harness: Harness) -> None:
    """Observation at T2, published 200 ms later: stamp T2, the first 10 points are already past.

    The inputs stamped T2 arrive while the node's clock is still 1 s before T2 (from the future: not used);
    then the clock jumps straight to T2 + 200 ms and stays there. The node's first chance to use them is
    at T2 + 200 ms, and it publishes at that frozen time however fast or slow the model is.
    """
    h = harness
    t2 = h.driver.now_ns + S
    h.status.clear()
    h.driver.images = {cam: np.roll(img, 7, axis=1) for cam, img in h.driver.images.items()}
    for _ in range(3):
        h.driver.publish_inputs(t2)
        time.sleep(0.02)
    h.driver.set_time(t2 + 200 * MS)
    status = h.wait_status(lambda s: s["observation_stamp"] == f"{t2 / 1e9:.9f}", 90)
    traj = next(m for m in h.chunks() if stamp_to_ns(m.header.stamp) == t2)
    assert int(status["skipped_points"]) == 10
    assert validate(traj.joint_names, traj.points, ALOHA_JOINTS, t2 + 200 * MS, t2) == []
    # latency figures on simulated time are wall-clock durations from the inputs' arrival: the model's time is part
    # of end to end (before: end_to_end 200 ms of frozen sim time, overhead = 200 - model < 0, nonsense)
    model, end_to_end = float(status["model_ms"]), float(status["end_to_end_ms"])
    assert model > 0 and end_to_end >= model and float(status["overhead_ms"]) >= 0.0
    assert float(status["input_age_ms"]) >= 0.0


def test_stale_camera_holds_within_two_control_periods(harness: Harness) -> None:
    h = harness
    h.run_until_running()
    h.status.clear()
    holds_before = len(h.holds())
    h.driver.muted.add("face_view")
    # the clock steps only once the node acted on the previous step: a loaded machine cannot make it late
    assert h.lockstep(lambda: any(status_values(m)["state"] == "holding" for m in list(h.status.messages)))
    status = h.wait_status(lambda s: s["state"] == "holding", 10)
    deadline_ns = h.driver.last_stamp["face_view"] + int(MAX_AGE_S * S)
    since_ns = round(float(status["state_since"]) * S)
    # (a lost best-effort frame can make the node's own deadline up to one camera period earlier)
    assert -34 * MS < since_ns - deadline_ns <= 2 * CONTROL_PERIOD_NS, (since_ns - deadline_ns) / MS
    assert "face_view: stale" in status["hold_reason"]
    assert wait_until(lambda: len(h.holds()) > holds_before, 10)
    hold = h.holds()[-1]
    assert stamp_to_ns(hold.header.stamp) == 0 and list(hold.points[0].velocities) == [0.0] * len(ALOHA_JOINTS)
    assert np.all(np.isfinite(hold.points[0].positions))
    n = len(h.chunks())
    until = h.driver.now_ns + 300 * MS  # 15 more control periods of the node's clock, still stale
    assert h.lockstep(lambda: h.driver.now_ns >= until)
    assert len(h.chunks()) == n, "a chunk was published while an input was stale"
    h.driver.muted.clear()


BAD_CAMERA = {
    "wrong_encoding": (lambda t: image_msg(np.zeros((240, 320, 2), np.uint8), t, "yuv422"),
                       "unsupported image encoding 'yuv422'"),
    "wrong_size": (lambda t: _resized_header(image_msg(np.zeros((240, 320, 3), np.uint8), t), 480, 640), "truncated"),
    "truncated_data": (lambda t: _truncated(image_msg(np.zeros((240, 320, 3), np.uint8), t)), "truncated"),
}


def _resized_header(msg, height: int, width: int):  # type: ignore[no-untyped-def]
    msg.height, msg.width, msg.step = height, width, width * 3
    return msg


def _truncated(msg):  # type: ignore[no-untyped-def]
    msg.data = bytes(msg.data)[: len(msg.data) // 2]
    return msg


def _joint_msg(names: list[str], positions: list[float], stamp: int) -> JointState:
    msg = JointState()
    msg.header.stamp = time_from_ns(stamp)
    msg.name, msg.position = names, positions
    return msg


BAD_JOINTS = {
    "nan_joint": (lambda t: _joint_msg(list(ALOHA_JOINTS), [0.0] * 6 + [float("nan")] + [0.0] * 7, t),
                  "non-finite position for joints ['left_gripper']"),
    "missing_joint_names": (lambda t: _joint_msg(list(ALOHA_JOINTS[:-1]), [0.0] * 13, t),
                            "missing required joints ['right_gripper']"),
    "wrong_joint_array_size": (lambda t: _joint_msg(list(ALOHA_JOINTS), [0.0] * 10, t), "14 joint names but 10"),
}


@pytest.mark.parametrize("case", [*BAD_CAMERA, *BAD_JOINTS])
def test_bad_input_blocks_inference_and_says_what_is_wrong(harness: Harness, case: str) -> None:
    """The node keeps running, holds if it was moving, publishes no chunk from the bad input, and says why."""
    h = harness
    h.driver.rate = SLOW
    h.status.clear()
    injected = h.driver.now_ns
    if case in BAD_CAMERA:
        factory, expected = BAD_CAMERA[case]
        h.driver.camera_override["left_wrist_view"] = factory
    else:
        factory, expected = BAD_JOINTS[case]
        h.driver.joint_override = factory
    status = h.wait_status(lambda s: expected in s["hold_reason"], 60)
    assert status["state"] in ("holding", "waiting")
    h.wait_node_time(h.driver.now_ns + 100 * MS)  # 0.1 s more of the node's clock with the bad input
    # chunks from observations taken after the bad input arrived (stamp = observation time): none
    late = [m for m in h.chunks() if stamp_to_ns(m.header.stamp) > injected + 50 * MS]
    assert late == [], f"a chunk was published from an observation with a bad {case}"
    assert h.proc.alive()

    def diagnosed() -> bool:
        diag = [d for m in list(h.diagnostics.messages) for d in m.status if d.name.endswith(": inputs")]
        return any(expected in kv.value for d in diag for kv in d.values)

    assert wait_until(diagnosed, 10), "the input diagnostics do not say it"
    h.driver.camera_override.clear()
    h.driver.joint_override = None


def test_huge_instruction_is_refused_and_the_node_keeps_running(harness: Harness) -> None:
    h = harness
    pub = h.ros.publisher(String, f"{NODE}/instruction")
    assert h.ros.wait_for_subscribers(pub)
    h.status.clear()
    pub.publish(String(data="x" * 1_000_000))
    status = h.wait_status(lambda s: "instruction of 1000000 characters refused" in s["instruction_problem"], 60)
    assert h.proc.alive() and status["state"] in ("running", "waiting", "holding")


def test_pause_resume_and_estop(harness: Harness) -> None:
    h = harness
    if h.last_status().get("state") != "running":
        h.run_until_running()
    holds = len(h.holds())
    res = call_service(h.ros, Trigger, f"{NODE}/pause", Trigger.Request())
    assert res.success, res.message
    assert wait_until(lambda: len(h.holds()) > holds, 10)
    n = len(h.chunks())
    h.driver.pulse_until(lambda: False, 2.0)
    assert len(h.chunks()) == n and h.last_status()["state"] == "paused"
    assert call_service(h.ros, Trigger, f"{NODE}/resume", Trigger.Request()).success
    h.run_until_running()

    assert call_service(h.ros, SetBool, f"{NODE}/estop", SetBool.Request(data=True)).success
    h.wait_status(lambda s: s["state"] == "estopped", 10)
    refused = call_service(h.ros, Trigger, f"{NODE}/resume", Trigger.Request())
    assert not refused.success and "release" in refused.message
    n = len(h.chunks())
    h.driver.pulse_until(lambda: False, 2.0)
    assert len(h.chunks()) == n, "a chunk was published during an e-stop"
    assert call_service(h.ros, SetBool, f"{NODE}/estop", SetBool.Request(data=False)).success
    h.wait_status(lambda s: s["state"] == "paused", 10)
    assert call_service(h.ros, Trigger, f"{NODE}/resume", Trigger.Request()).success
    h.wait_status(lambda s: s["state"] == "waiting", 10)


def test_diagnostics_status_and_ghost(harness: Harness) -> None:
    h = harness
    h.diagnostics.clear()
    assert h.diagnostics.wait_for(2, 30)
    statuses = {d.name.split(": ")[-1]: d for d in h.diagnostics.messages[-1].status}
    inputs = status_values(statuses["inputs"])
    for stream in (*DEFAULT_CAMERAS, "joint_states"):
        assert float(inputs[f"{stream}.rate_hz"]) > 0 and inputs[f"{stream}.age_s"] != "never"
        assert inputs[f"{stream}.transport_delay_ms"] != "n/a"
    latency = status_values(statuses["latency"])
    for stage in ("decode", "preprocess", "inference", "postprocess", "publish", "end_to_end", "overhead"):
        assert stage in latency and latency[stage].startswith("last ")
    control = status_values(statuses["control"])
    assert int(control["chunks_published"]) >= 3 and "chunk_boundary_jump" in control
    assert h.ghost.messages and list(h.ghost.messages[-1].name) == list(ALOHA_JOINTS)
    assert np.all(np.isfinite(h.ghost.messages[-1].position))


def test_deactivate_holds_then_stops_publishing(harness: Harness) -> None:
    h = harness
    holds = len(h.holds())
    assert h.lifecycle(Transition.TRANSITION_DEACTIVATE)
    assert wait_until(lambda: len(h.holds()) > holds, 10), "no hold on deactivate"
    assert h.state() == "inactive"
    n = len(h.trajectories.messages)
    h.driver.pulse_until(lambda: False, 3.0)
    assert len(h.trajectories.messages) == n, "published while inactive"
    assert h.lifecycle(Transition.TRANSITION_ACTIVATE)
    h.wait_status(lambda s: s["state"] in ("waiting", "running"), 10)


def test_node_refuses_random_weights_without_permission(tiny_checkpoint: Path, tmp_path: Path) -> None:
    params = {"checkpoint_dir": str(tiny_checkpoint), "warmup": False}
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as node:
        assert node.proc.wait(180) == 1
        assert "random weights" in node.output()


@pytest.mark.parametrize("missing", ["checkpoint_dir"])
def test_node_requires_a_checkpoint(missing: str, tmp_path: Path) -> None:
    with running_node("wallx_ros.nodes.policy_node", "wallx_policy", {"warmup": False}, tmp_path) as node:
        assert node.proc.wait(120) == 1
        assert f"parameter {missing} is required" in node.output()
