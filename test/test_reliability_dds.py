"""The running policy node over real DDS: fuzzed input messages, then injected faults.

One node process for the module (``fault_policy_node``: the production node with its real backend wrapped by
the test-only fault injector), driven in simulated time by ``SimDriver`` (the test owns /clock, cameras and
joint states). Every JointTrajectory the node publishes during the whole module is checked: finite, within
the position limits and max_velocity, zero end velocity, the controller's rules, unique joint names, and not
already over when it arrives (stale). Faults: a camera stream stops; the camera's publisher process is
SIGKILLed and restarted; the clock jumps back (simulation reset); the model raises; CUDA out of memory; the
host runs out of memory; a backend bug raises an undocumented exception; inference slower than a chunk; NaN
and huge actions. For each: the node holds or publishes nothing, says so in /diagnostics, and recovers when
the fault goes away (recovery time measured on the wall clock and in simulated time).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from fuzz_ledger import count, event, examples
from policy_sim_driver import S, SimDriver, status_values
from rclpy.qos import qos_profile_sensor_data
from ros_harness import REPO_ROOT, NodeProcess, RosTestNode, running_node, subprocess_env, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.core.joint_trajectory_rules import hazards, time_from_start_ns, validate
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

NODE = "/wallx_policy"
MS = 1_000_000
LIMIT = 3.0  # position limits +-LIMIT for every joint
VMAX = 4.0  # max_velocity for every joint
MAX_AGE_S = 0.5
SLOW = 0.05  # simulated seconds per real second while the model runs (a 0.64 s chunk lasts 12.8 s of wall time)
FAST = 0.5  # while waiting for staleness to be detected (max_age 0.5 s of sim time = 1 s of wall time)
TARGET = "JointTrajectory published by the node (whole module)"


@dataclass
class Received:
    sim_now_ns: int
    msg: JointTrajectory


@dataclass
class Rig:
    ros: RosTestNode
    proc: NodeProcess
    driver: SimDriver
    fault_file: Path
    trajectories: list[Received] = field(default_factory=list)
    status: list[Any] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- observation ---------------------------------------------------------------------------------------
    def on_trajectory(self, msg: JointTrajectory) -> None:
        received = Received(self.driver.now_ns, msg)
        with self.lock:
            self.trajectories.append(received)
        problems = unsafe_reasons(received)
        count(TARGET, "unsafe" if problems else "accepted")
        if problems:
            self.problems.extend(problems)

    def chunks(self) -> list[Received]:
        with self.lock:
            return [r for r in self.trajectories if len(r.msg.points) > 1]

    def holds(self) -> list[Received]:
        with self.lock:
            return [r for r in self.trajectories if len(r.msg.points) == 1]

    def last_status(self) -> dict[str, str]:
        with self.lock:
            return status_values(self.status[-1]) if self.status else {}

    def control_diagnostics(self, since: int = 0) -> list[DiagnosticStatus]:
        with self.lock:
            arrays = self.diagnostics[since:]
        return [d for a in arrays for d in a.status if d.name.endswith(": control")]

    def input_diagnostics(self, since: int = 0) -> list[DiagnosticStatus]:
        with self.lock:
            arrays = self.diagnostics[since:]
        return [d for a in arrays for d in a.status if d.name.endswith(": inputs")]

    def alive(self) -> bool:
        assert self.proc.alive(), f"the node died:\n{self.proc.output()[-4000:]}"
        return True

    def set_fault(self, fault: str, **extra: Any) -> None:
        tmp = self.fault_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fault": fault, **extra}))
        os.replace(tmp, self.fault_file)

    def wait_diagnostic(self, predicate: Callable[[DiagnosticStatus], bool], since: int, timeout_s: float,
                        inputs: bool = False) -> DiagnosticStatus:
        pick = self.input_diagnostics if inputs else self.control_diagnostics
        found: list[DiagnosticStatus] = []

        def check() -> bool:
            self.alive()
            found[:] = [d for d in pick(since) if predicate(d)]
            return bool(found)

        assert wait_until(check, timeout_s), f"no such diagnostic; last status {self.last_status()}"
        return found[-1]

    def wait_node_time(self, t_ns: int, timeout_s: float = 120.0) -> None:
        """Until the node published /diagnostics stamped ``t_ns`` or later on its own (simulated) clock: its
        control loop has run up to about then. A window measured in the node's time, not the test's."""
        def reached() -> bool:
            self.alive()
            with self.lock:
                return any(stamp_to_ns(a.header.stamp) >= t_ns for a in self.diagnostics[-8:])

        assert wait_until(reached, timeout_s), f"the node's clock never reached {t_ns / S:.3f} s"

    def run_until_chunk(self, timeout_s: float = 150.0, rate: float = SLOW) -> tuple[float, float]:
        """Good inputs at ``rate``; returns (wall s, sim s) until a NEW chunk arrived."""
        start_wall, start_sim = time.monotonic(), self.driver.now_ns
        n = len(self.chunks())
        self.driver.rate = rate
        assert wait_until(lambda: self.alive() and len(self.chunks()) > n, timeout_s), \
            f"no chunk within {timeout_s} s; status {self.last_status()}\n{self.proc.output()[-3000:]}"
        got = self.chunks()[n]
        return time.monotonic() - start_wall, (got.sim_now_ns - start_sim) / S

    def diag_count(self) -> int:
        with self.lock:
            return len(self.diagnostics)


def unsafe_reasons(r: Received) -> list[str]:
    """Why this message must not reach a robot (empty: safe)."""
    msg = r.msg
    out = [*hazards(msg.joint_names, msg.points),
           *validate(msg.joint_names, msg.points, ALOHA_JOINTS, 0, stamp_to_ns(msg.header.stamp))]
    if not msg.points:
        return [*out, "no points"]
    pos = np.array([p.positions for p in msg.points], dtype=np.float64)
    vel = np.array([p.velocities for p in msg.points], dtype=np.float64)
    if np.all(np.isfinite(pos)):
        if np.any(np.abs(pos) > LIMIT + 1e-9):
            out.append(f"positions beyond +-{LIMIT}: max |p| {np.abs(pos).max():.3g}")
        if len(msg.points) > 1:
            t = np.array([time_from_start_ns(p) for p in msg.points]) / S
            if np.any(np.abs(np.diff(pos, axis=0)) > np.diff(t)[:, None] * VMAX * (1 + 1e-6) + 1e-9):
                out.append("consecutive points faster than max_velocity")
    if vel.size and (np.any(~np.isfinite(vel)) or np.any(np.abs(vel) > VMAX * (1 + 1e-9))):
        out.append("velocities beyond max_velocity")
    stamp = stamp_to_ns(msg.header.stamp)
    if stamp != 0 and stamp + time_from_start_ns(msg.points[-1]) < r.sim_now_ns - 50 * MS:
        out.append(f"stale: the trajectory ended {(r.sim_now_ns - stamp) / 1e6:.0f} ms before it arrived")
    return out


@pytest.fixture(scope="module")
def rig(ros: RosTestNode, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    log_dir = tmp_path_factory.mktemp("reliability")
    fault_file = log_dir / "faults.json"
    # engine stock: "raise"/"oom" are injected inside LeRobot's predict_action_chunk, which fast_flow does not call
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "seed": 0, "num_threads": 1,
              "engine": "stock",
              "warmup": False, "use_sim_time": True, "instruction": "insert the peg", "max_age_s": MAX_AGE_S,
              "sync_tolerance_s": 0.05, "diagnostics_rate_hz": 4.0, "position_lower": [-LIMIT],
              "position_upper": [LIMIT], "max_velocity": [VMAX]}
    env = {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'test'}", "WALLX_TEST_FAULT_FILE": str(fault_file)}
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(5000 * S)
    try:
        with running_node("fault_policy_node", "wallx_policy", params, log_dir, extra_env=env) as proc:
            r = Rig(ros, proc, driver, fault_file)
            r.set_fault("none")

            def keep(store: list[Any]) -> Callable[[Any], None]:
                def add(msg: Any) -> None:
                    with r.lock:
                        store.append(msg)
                return add

            ros.node.create_subscription(JointTrajectory, f"{NODE}/joint_trajectory", r.on_trajectory, 100)
            ros.node.create_subscription(DiagnosticStatus, f"{NODE}/status", keep(r.status), 100)
            ros.node.create_subscription(DiagnosticArray, "/diagnostics", keep(r.diagnostics), 100)
            assert driver.wait_for_node(), proc.output()[-3000:]
            yield r
            assert proc.alive(), "the node died during the module"
            assert r.problems == [], f"unsafe trajectories: {r.problems[:10]}"
            event("dds_output_check", trajectories=len(r.trajectories), chunks=len(r.chunks()),
                  holds=len(r.holds()), unsafe=len(r.problems))
    finally:
        driver.close()


def test_node_runs_before_faults(rig: Rig) -> None:
    wall, sim = rig.run_until_chunk(240)
    event("baseline", first_chunk_wall_s=round(wall, 2), first_chunk_sim_s=round(sim, 3))


# -- DDS-level fuzz ---------------------------------------------------------------------------------------
def _fuzz_image(rng: np.random.Generator, stamp: int) -> Image:
    encodings = ["rgb8", "bgr8", "mono8", "rgba8", "yuv422", "16UC1", "", "32FC1", "bayer_rggb8", "8UC3"]
    h, w = int(rng.integers(0, 64)), int(rng.integers(0, 64))
    if rng.random() < 0.1:
        h, w = int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))
    enc = str(rng.choice(encodings))
    step = int(rng.choice([w * 3, w, w * 4 + 3, int(rng.integers(0, 2**32))]))
    size = int(rng.choice([h * step, int(rng.integers(0, 4096)), 0]))
    size = min(max(size, 0), 64 * 64 * 4 + 64)
    msg = Image(height=h, width=w, encoding=enc, step=step, is_bigendian=int(rng.integers(0, 2)),
                data=rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    msg.header.stamp = time_from_ns(stamp + int(rng.integers(-10 * S, 10 * S)) if rng.random() < 0.3 else stamp)
    return msg


def _fuzz_joint_state(rng: np.random.Generator, stamp: int) -> JointState:
    names = list(ALOHA_JOINTS)
    kind = rng.integers(0, 6)
    if kind == 0:
        names = names[: int(rng.integers(0, len(names)))]
    elif kind == 1:
        names = [*names, names[int(rng.integers(0, len(names)))]]
    elif kind == 2:
        names = [str(rng.integers(0, 1000)) for _ in range(int(rng.integers(0, 20)))]
    n = len(names) + int(rng.choice([0, 0, -1, 2]))
    pos = rng.normal(size=max(n, 0))
    if rng.random() < 0.5 and pos.size:
        pos[int(rng.integers(0, pos.size))] = rng.choice([np.nan, np.inf, -np.inf, 1e308])
    msg = JointState(name=names, position=pos.tolist())
    msg.header.stamp = time_from_ns(stamp)
    return msg


def _fuzz_instruction(rng: np.random.Generator) -> str:
    pieces = ["insert the peg", "<|im_start|>", "<|action|>", "<|propri|>", "<|im_end|>", "\x00", "\u202e",
              "ü", "🤖", "\n", "<|image_pad|>", "{{", "%s", "'; DROP", "\t"]
    text = "".join(str(rng.choice(pieces)) for _ in range(int(rng.integers(0, 12))))
    if rng.random() < 0.2:
        text *= int(rng.integers(50, 300))
    return text


def _input_errors(rig: Rig) -> dict[str, int]:
    """Bad messages counted by the node per stream (its /diagnostics 'inputs' status)."""
    diags = rig.input_diagnostics()
    if not diags:
        return {}
    return {kv.key[: -len(".errors")]: int(kv.value) for kv in diags[-1].values if kv.key.endswith(".errors")}


def test_dds_fuzz_inputs(rig: Rig) -> None:
    """Bad messages interleaved with good ones, over real DDS, on every topic the node subscribes."""
    ros, driver = rig.ros, rig.driver
    rng = np.random.default_rng(8)
    cams = {c: ros.publisher(Image, f"/{c}/image_raw", qos_profile_sensor_data) for c in DEFAULT_CAMERAS}
    joints = ros.publisher(JointState, "/joint_states", 10)
    instruction = ros.publisher(String, f"{NODE}/instruction", 10)
    for pub in (*cams.values(), joints, instruction):
        assert ros.wait_for_subscribers(pub)
    driver.rate = SLOW
    errors_before = _input_errors(rig)
    n = examples(120)
    sent = {"Image": 0, "JointState": 0, "instruction String": 0}
    for i in range(n):
        stamp = driver.now_ns
        kind = i % 4
        if kind in (0, 1):
            cams[DEFAULT_CAMERAS[int(rng.integers(0, 3))]].publish(_fuzz_image(rng, stamp))
            sent["Image"] += 1
        elif kind == 2:
            joints.publish(_fuzz_joint_state(rng, stamp))
            sent["JointState"] += 1
        else:
            text = _fuzz_instruction(rng)
            instruction.publish(String(data=text))
            sent["instruction String"] += 1
            refused = len(text) > 1000 or any(t in text for t in ("<|im_start|>", "<|action|>", "<|propri|>",
                                                                  "<|im_end|>", "<|image_pad|>"))
            count("DDS fuzz: instruction strings to the running node", "refused" if refused else "accepted")
        time.sleep(0.02)
        rig.alive()
    time.sleep(1.0)  # (only the ledger's counts below depend on it, no assertion)
    errors = {k: v - errors_before.get(k, 0) for k, v in _input_errors(rig).items()}
    bad_images = sum(v for k, v in errors.items() if k != "joint_states")
    count("DDS fuzz: Image messages to the running node", "refused", bad_images)
    count("DDS fuzz: Image messages to the running node", "accepted", max(sent["Image"] - bad_images, 0))
    count("DDS fuzz: JointState messages to the running node", "refused", errors.get("joint_states", 0))
    count("DDS fuzz: JointState messages to the running node", "accepted",
          max(sent["JointState"] - errors.get("joint_states", 0), 0))
    # an instruction with the model's control tokens is refused with the reason; a good one is taken back
    since = rig.diag_count()
    instruction.publish(String(data="insert <|image_pad|> the peg"))
    # (instruction_problem, not last_problem: a chunk published meanwhile clears last_problem)
    rig.wait_diagnostic(lambda d: "control token" in status_values(d).get("instruction_problem", ""), since, 30)
    instruction.publish(String(data="insert the peg"))
    rig.wait_diagnostic(lambda d: status_values(d).get("instruction_problem", "x") == "", rig.diag_count(), 30)
    # the node said what was wrong with the bad messages, and goes on with good ones
    rig.wait_diagnostic(lambda d: any(kv.key.endswith(".errors") and int(kv.value) > 0 for kv in d.values),
                        0, 30, inputs=True)
    log = rig.proc.output()
    assert "unsupported image encoding" in log and "joint_states:" in log, "the node did not say what was wrong"
    rig.set_fault("none")
    driver.images = {cam: np.roll(img, 3, axis=0) for cam, img in driver.images.items()}
    wall, sim = rig.run_until_chunk()
    event("dds_fuzz", messages=sent, recovered=True, recovery_wall_s=round(wall, 2), recovery_sim_s=round(sim, 3))


# -- faults -----------------------------------------------------------------------------------------------
def _fault_event(name: str, behaviour: str, said: str, wall: float, sim: float, **extra: Any) -> None:
    event("fault", name=name, behaviour=behaviour, diagnostics=said[:200], recovered=True,
          recovery_wall_s=round(wall, 2), recovery_sim_s=round(sim, 3), **extra)


def test_camera_stream_stops_and_returns(rig: Rig) -> None:
    rig.run_until_chunk()
    since, holds = rig.diag_count(), len(rig.holds())
    rig.driver.muted.add("face_view")
    rig.driver.rate = FAST
    said = rig.wait_diagnostic(lambda d: "face_view: stale" in d.message, since, 60)
    assert said.level == DiagnosticStatus.WARN and "holding" in said.message
    assert wait_until(lambda: len(rig.holds()) > holds, 10), "no hold was sent"
    n = len(rig.chunks())
    rig.wait_node_time(rig.driver.now_ns + S // 2)  # half a second of the node's time, still stale
    assert len(rig.chunks()) == n, "a chunk was published while a camera was stale"
    rig.driver.muted.clear()
    wall, sim = rig.run_until_chunk(rate=SLOW)
    _fault_event("camera stream stops", "hold within 2 control periods, no chunk until it returns", said.message,
                 wall, sim)


def test_camera_publisher_killed_and_restarted(rig: Rig) -> None:
    rig.run_until_chunk()
    env = subprocess_env()
    script = str(REPO_ROOT / "test" / "fault_camera_publisher.py")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, script, "/face_view/image_raw", "240", "320", "11"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    camera = start()
    try:
        rig.driver.muted.add("face_view")  # from now on the camera process is the only face_view publisher
        wall, sim = rig.run_until_chunk()
        since, holds = rig.diag_count(), len(rig.holds())
        camera.send_signal(signal.SIGKILL)
        camera.wait(10)
        rig.driver.rate = FAST
        said = rig.wait_diagnostic(lambda d: "face_view: stale" in d.message, since, 60)
        assert wait_until(lambda: len(rig.holds()) > holds, 10), "no hold after the publisher died"
        camera = start()
        wall, sim = rig.run_until_chunk()
        _fault_event("camera publisher SIGKILLed, restarted", "hold; resumes with the new publisher",
                     said.message, wall, sim)
    finally:
        camera.kill()
        camera.wait(10)
        rig.driver.muted.clear()


def test_clock_jumps_back(rig: Rig) -> None:
    """A simulation reset: /clock goes back 100 s. Old samples and plans must not be used in the new timeline."""
    rig.run_until_chunk()
    since = rig.diag_count()
    before = rig.driver.now_ns
    rig.driver.set_time(before - 100 * S)
    said = rig.wait_diagnostic(lambda d: "clock jumped back" in d.message or "clock jumped back" in
                               status_values(d).get("last_problem", ""), since, 60)
    wall, sim = rig.run_until_chunk()
    new = rig.chunks()[-1]
    assert stamp_to_ns(new.msg.header.stamp) < before - 50 * S, "the chunk after the reset is in the old timeline"
    _fault_event("clock jumps back 100 s (sim reset)", "hold, buffers cleared, resumes in the new timeline",
                 status_values(said).get("last_problem", "") or said.message, wall, sim)


MODEL_FAULTS = {
    "raise": ("model raises (RuntimeError in LeRobot)", "inference failed: WallX inference failed: RuntimeError"),
    "oom": ("CUDA out of memory", "out of GPU memory"),
    "host_oom": ("host out of memory (MemoryError)", "inference failed: MemoryError"),
    "raise_outside": ("backend bug (KeyError)", "inference failed: KeyError"),
    "nan": ("model outputs NaN", "non-finite"),
}


@pytest.mark.parametrize("fault", list(MODEL_FAULTS))
def test_model_faults(rig: Rig, fault: str) -> None:
    name, expected = MODEL_FAULTS[fault]
    rig.run_until_chunk()
    since, n = rig.diag_count(), len(rig.chunks())
    rig.set_fault(fault)
    rig.driver.rate = SLOW
    said = rig.wait_diagnostic(lambda d: expected in status_values(d).get("last_problem", ""), since, 120)
    assert said.level == DiagnosticStatus.ERROR, said
    published = len(rig.chunks()) - n
    assert published <= 1, "chunks kept coming while the model failed"  # one may have been in flight
    rig.set_fault("none")
    wall, sim = rig.run_until_chunk()
    _fault_event(name, "nothing published from the failing model, ERROR in /diagnostics, retries",
                 status_values(said)["last_problem"], wall, sim)


def test_huge_actions_are_clamped_to_the_limits(rig: Rig) -> None:
    rig.run_until_chunk()
    n = len(rig.chunks())
    rig.set_fault("huge")
    rig.run_until_chunk()
    rig.set_fault("none")
    chunks = rig.chunks()[n:]
    assert chunks and all(not unsafe_reasons(c) for c in chunks)
    assert wait_until(lambda: "limits: clamped: position limits exceeded" in rig.proc.output(), 10)
    event("fault", name="model outputs x1e6 actions", behaviour="clamped to the limits and rate-limited (clamp)",
          diagnostics="limits: clamped", recovered=True, recovery_wall_s=0.0, recovery_sim_s=0.0)


def test_inference_slower_than_a_chunk(rig: Rig) -> None:
    rig.run_until_chunk()
    since = rig.diag_count()
    rig.set_fault("slow", seconds=2.0)
    rig.driver.rate = 1.0  # 2 s of model time = 2 s of sim time > the 0.64 s chunk
    said = rig.wait_diagnostic(lambda d: "chunk expired" in status_values(d).get("last_problem", ""), since, 120)
    last = rig.trajectories[-1].msg
    assert list(last.points[-1].velocities) == [0.0] * len(ALOHA_JOINTS), "the last command does not end at rest"
    rig.set_fault("none")
    wall, sim = rig.run_until_chunk()
    _fault_event("inference slower than a chunk (2 s vs 0.64 s)",
                 "late chunks dropped; the controller holds the end of the last one (zero velocity)",
                 status_values(said)["last_problem"], wall, sim)
