"""The embedded simulator over real DDS: alone (a JTC's topic contract) and in closed loop with the policy node.

The closed loop runs on sim time (/clock from the sim node, use_sim_time on the policy node) at a real-time
factor of 0.05: the tiny WallX takes ~1 s per chunk on a quiet 2-core CPU and ~6 s when the machine is
loaded 5x over, so in sim time a 0.64 s chunk (32 actions at 50 fps) arrives 0.05-0.3 s after its
observation, as a real checkpoint's chunk would from a GPU at real time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from ros_harness import REPO_ROOT, RosTestNode, running_node, subprocess_env, wait_until
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import MarkerArray

from wallx_ros.analysis.run_log import read_run_log
from wallx_ros.nodes.ros_conversions import duration_from_s, stamp_to_ns
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

SIM_ENV = {"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}
TRAJECTORY_TOPIC = "/arm_controller/joint_trajectory"
RTF = 0.05
CLOSED_LOOP_SIM_S = 2.0  # sim seconds of closed loop after the first accepted chunk
ARM_TOLERANCE_RAD = 0.05  # MuJoCo joint limits are (stiff) soft constraints
GRIPPER_TOLERANCE = 0.15  # normalised finger travel: the slides are dragged past their stops by a whipping wrist
MAX_MISSED_FRACTION = 0.25


def _sim_params(run_log: Path, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"real_time_factor": RTF, "camera_rate_hz": 20.0, "image_width": 256,
                              "image_height": 192, "run_log": str(run_log), "diagnostics_period_s": 0.5}
    params.update(overrides)
    return params


def _sim_status(diags: Any) -> dict[str, str]:
    for msg in reversed(list(diags.messages)):
        for status in msg.status:
            if status.name.startswith("wallx_sim"):
                return {kv.key: kv.value for kv in status.values}
    return {}


def _trajectory(names: list[str], rows: list[list[float]], dt_s: float, stamp_ns: int = 0) -> JointTrajectory:
    msg = JointTrajectory()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.joint_names = names
    for i, row in enumerate(rows):
        point = JointTrajectoryPoint()
        point.positions = [float(v) for v in row]
        point.time_from_start = duration_from_s((i + 1) * dt_s)
        msg.points.append(point)
    return msg


def test_sim_node_speaks_like_a_robot_with_a_trajectory_controller(ros: RosTestNode, tmp_path: Path) -> None:
    states = ros.collect(JointState, "/joint_states")
    clocks = ros.collect(Clock, "/clock")
    images = {cam: ros.collect(Image, f"/{cam}/image_raw", qos_profile_sensor_data) for cam in DEFAULT_CAMERAS}
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    reliable = ros.publisher(JointTrajectory, TRAJECTORY_TOPIC)
    best_effort = ros.publisher(JointTrajectory, TRAJECTORY_TOPIC,
                                QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    overlay = ros.collect(MarkerArray, "/wallx_diagnostics_markers/markers")
    params = _sim_params(tmp_path / "run.jsonl", real_time_factor=0.5)
    with running_node("wallx_ros.nodes.sim_node", "wallx_sim", params, tmp_path, extra_env=SIM_ENV) as sim, \
         running_node("wallx_ros.nodes.diagnostics_markers_node", "wallx_diagnostics_markers", {"rate_hz": 4.0},
                      tmp_path):
        assert ros.wait_for_subscribers(reliable, timeout_s=60), sim.output()
        # like a JTC, the subscription is RELIABLE: a best-effort publisher never connects
        assert best_effort.get_subscription_count() == 0
        assert states.wait_for(10, 30) and clocks.wait_for(10, 30)
        for cam, collector in images.items():
            assert collector.wait_for(2, 30), f"no {cam} images"
            img = collector.messages[-1]
            assert (img.height, img.width, img.encoding) == (192, 256, "rgb8")
        first = states.messages[-1]
        assert list(first.name) == list(ALOHA_JOINTS)
        assert stamp_to_ns(first.header.stamp) > 0
        stamps = [stamp_to_ns(m.clock) for m in clocks.messages]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)

        start = np.array(first.position)
        target = start.copy()
        waist = ALOHA_JOINTS.index("right_waist")
        target[waist] += 0.3
        # rejected as JTC would: a joint missing
        reliable.publish(_trajectory(list(ALOHA_JOINTS[:-1]), [list(target[:-1])], 0.2))
        # accepted, joints in another order (matched by name), stamp 0 = start now
        order = list(reversed(range(len(ALOHA_JOINTS))))
        reliable.publish(_trajectory([ALOHA_JOINTS[i] for i in order], [[target[i] for i in order]], 0.2))
        assert wait_until(lambda: abs(states.messages[-1].position[waist] - target[waist]) < 0.02, 30), \
            f"right_waist did not reach {target[waist]:.3f}: {states.messages[-1].position[waist]:.3f}"
        assert wait_until(lambda: _sim_status(diags).get("trajectories_accepted") == "1", 10)
        status = _sim_status(diags)
        assert status["trajectories_rejected"] == "1"
        assert "joint names but the controller has" in status["last_rejection"]
        other = [i for i in range(len(ALOHA_JOINTS)) if i != waist]
        np.testing.assert_allclose(np.array(states.messages[-1].position)[other], start[other], atol=0.03)

        # RViz: the diagnostics overlay renders the sim's status; every topic wallx.rviz shows exists
        assert wait_until(lambda: any("wallx_sim: simulation" in m.markers[0].text for m in overlay.messages), 30)
        assert "missed_control_periods" in overlay.messages[-1].markers[0].text
        ros.collect(MarkerArray, "/wallx_sim/robot_markers")  # markers are only computed for subscribers
        graph = {name for name, _ in ros.node.get_topic_names_and_types()}
        rviz = yaml.safe_load((REPO_ROOT / "config" / "wallx.rviz").read_text())
        shown = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d}
        shown = {t for t in shown if not t.startswith("/wallx_policy/")}  # the policy node is not running here
        assert shown <= graph, f"wallx.rviz shows topics nobody publishes: {shown - graph}"
    log = sim.log_path.read_text()
    assert sim.proc.returncode == 0 and "Traceback" not in log, log[-3000:]  # clean SIGINT shutdown


def _declared_parameters(ros: RosTestNode, node: str) -> set[str]:
    from rcl_interfaces.srv import ListParameters

    client = ros.node.create_client(ListParameters, f"/{node}/list_parameters")
    assert client.wait_for_service(timeout_sec=30), f"{node} offers no list_parameters service"
    future = client.call_async(ListParameters.Request())
    assert wait_until(future.done, 30)
    return set(future.result().result.names)


def _yaml_keys(path: Path) -> set[str]:
    return set(yaml.safe_load(path.read_text())["/**"]["ros__parameters"])


def _node_topics(ros: RosTestNode, node: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    pubs = ros.node.get_publisher_names_and_types_by_node(node, "/")
    subs = ros.node.get_subscriber_names_and_types_by_node(node, "/")
    return ({(t, ty) for t, types in pubs for ty in types}, {(t, ty) for t, types in subs for ty in types})


@pytest.mark.slow
def test_demo_runs_policy_and_sim_in_closed_loop(ros: RosTestNode, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """``bash scripts/demo.sh`` (the README's main job), observed from outside over DDS, stopped with Ctrl-C."""
    states = ros.collect(JointState, "/joint_states")
    diags = ros.collect(DiagnosticArray, "/diagnostics")
    out = tmp_path / "demo"
    cmd = ["bash", str(REPO_ROOT / "scripts" / "demo.sh"), "--no-setup", "--checkpoint", str(tiny_checkpoint),
           "--real-time-factor", str(RTF), "--out", str(out), "--sim-param", "camera_rate_hz:=20.0",
           "--sim-param", "image_width:=256", "--sim-param", "image_height:=192",
           "--sim-param", "diagnostics_period_s:=0.5",
           "--", "-p", "allow_random_weights:=true", "-p", "warmup:=false", "-p", "instruction:=insert the peg"]
    console = open(tmp_path / "demo_console.log", "w")  # noqa: SIM115 - closed below
    demo = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, env=subprocess_env(SIM_ENV), cwd=tmp_path)

    def logs() -> str:
        console.flush()
        return (tmp_path / "demo_console.log").read_text(errors="replace")[-4000:]

    try:
        assert wait_until(lambda: int(_sim_status(diags).get("trajectories_accepted", "0")) > 0
                          or demo.poll() is not None, 240), f"no chunk accepted by the sim\n{logs()}"
        assert demo.poll() is None, logs()
        t_first = float(_sim_status(diags)["sim_time_s"])

        # while both run: their parameters and topics match the shipped configs (launch + bridges)
        sim_params = _declared_parameters(ros, "wallx_sim")
        documented = _yaml_keys(REPO_ROOT / "config" / "sim.yaml")
        assert documented <= sim_params, f"config/sim.yaml documents undeclared {documented - sim_params}"
        assert sim_params - documented <= {"use_sim_time", "start_type_description_service"}, \
            f"undocumented sim_node parameters: {sim_params - documented}"
        launch_args = {"checkpoint_dir", "device", "mode", "allow_random_weights", "use_sim_time"}
        assert launch_args <= _declared_parameters(ros, "wallx_policy"), \
            "sim.launch.py passes parameters the policy node does not declare"
        topic_set = yaml.safe_load((REPO_ROOT / "config" / "topics_embedded.yaml").read_text())["remappings"]
        _check_topic_sets_when_graph_settled(ros, topic_set)

        assert wait_until(lambda: float(_sim_status(diags).get("sim_time_s", "0")) >= t_first + CLOSED_LOOP_SIM_S
                          or demo.poll() is not None, CLOSED_LOOP_SIM_S / RTF * 4 + 60), logs()
        assert demo.poll() is None, logs()
        status = _sim_status(diags)
        demo.send_signal(signal.SIGINT)  # Ctrl-C: both nodes stop cleanly, then the run is plotted
        assert demo.wait(180) == 0, logs()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        console.close()
    console_log = (tmp_path / "demo_console.log").read_text()
    assert "exit codes: sim_node 0 policy_node 0" in console_log, console_log[-3000:]
    for name in ("latency_histograms.png", "trajectories.png"):
        assert (out / "plots" / name).stat().st_size > 10_000, console_log[-3000:]

    # the policy's chunks were valid JTC trajectories stamped on sim time
    run_log = out / "run.jsonl"
    trace = read_run_log(run_log)
    accepted = [t for t in trace.trajectories if t.accepted]
    rejected = [t for t in trace.trajectories if not t.accepted]
    assert len(accepted) >= 3, status
    late = [t for t in rejected if t.arrival_ns - t.stamp_ns > 640_000_000]  # whole chunk in the past on arrival
    assert len(rejected) == len(late), "the sim rejected a policy trajectory for a reason other than lateness"
    # stamps are sim time: arrival - header.stamp within one chunk (0.64 s) either way (latency compensation may
    # stamp a chunk slightly ahead); a wall-clock stamp or a wall-clock latency added to it is seconds off
    ages = trace.latencies_ms["trajectory age at arrival [sim ms]"]
    assert all(-640 < age < 640 for age in ages), ages

    # joints moved and stayed within limits
    q = np.array([m.position for m in states.messages])
    arm = np.array(["gripper" not in n for n in ALOHA_JOINTS])
    assert np.abs(q[-1] - q[0])[arm].max() > 0.05, "the arms did not move"
    tolerance = np.where(arm, ARM_TOLERANCE_RAD, GRIPPER_TOLERANCE)
    worst = np.maximum(trace.lower_limits - q, q - trace.upper_limits).max(axis=0)
    assert np.all(worst <= tolerance), dict(zip(ALOHA_JOINTS, np.round(worst, 3), strict=True))

    # control periods missed (holding past the end of the newest chunk) between the first and the last chunk
    # (after the last one the policy is being stopped: the sim then holds by design)
    t0, t1 = min(t.arrival_ns for t in accepted), max(t.arrival_ns for t in accepted)
    phases = [p for t, p in _step_phases(run_log) if t0 < t <= t1]
    missed = phases.count("holding") / len(phases)
    print(f"closed loop: {len(accepted)} chunks accepted, {len(rejected)} late, {len(phases)} control periods, "
          f"missed {missed:.1%} (sim's counter: {status.get('missed_control_periods')}), obs->command "
          f"p50 {np.median(trace.latencies_ms['observation to command [wall ms]']):.0f} wall ms, render "
          f"{status.get('render_ms_per_frame')} ms/frame")
    assert "missed_control_periods" in status  # also published in /diagnostics
    assert missed < MAX_MISSED_FRACTION, f"{missed:.1%} of the control periods had no fresh command"


def _step_phases(run_log: Path) -> list[tuple[int, str]]:
    steps = [json.loads(line) for line in run_log.read_text().splitlines() if '"event":"step"' in line]
    return [(int(r["t"]), str(r["phase"])) for r in steps]


def _check_topic_sets_when_graph_settled(ros: RosTestNode, embedded_remaps: dict[str, str],
                                         timeout_s: float = 30.0) -> None:
    """The peer's per-node graph view fills in endpoint by endpoint (ros_discovery_info lags DDS discovery):
    re-check until it holds or the timeout, then report the last mismatch."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _check_topic_sets(ros, embedded_remaps)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _check_topic_sets(ros: RosTestNode, embedded_remaps: dict[str, str]) -> None:
    """The Gazebo bridge and Isaac topic set name the topics (and types) the running nodes really use."""
    sim_pubs, sim_subs = _node_topics(ros, "wallx_sim")
    pol_pubs, pol_subs = _node_topics(ros, "wallx_policy")
    bridge = yaml.safe_load((REPO_ROOT / "config" / "gz_bridge.yaml").read_text())
    to_ros = {(e["ros_topic_name"], e["ros_type_name"]) for e in bridge if e["direction"] == "GZ_TO_ROS"}
    to_gz = {(e["ros_topic_name"], e["ros_type_name"]) for e in bridge if e["direction"] == "ROS_TO_GZ"}
    # Gazebo reproduces the embedded simulator's topic set: every policy input, and the trajectory it sends
    assert pol_subs - {(t, ty) for t, ty in pol_subs if t.startswith("/wallx_policy/")} <= to_ros, \
        f"policy inputs missing from gz_bridge.yaml: {sorted(pol_subs - to_ros)}"
    assert to_ros <= sim_pubs, f"bridged topics the embedded sim does not publish: {sorted(to_ros - sim_pubs)}"
    assert to_gz <= pol_pubs & sim_subs, f"trajectory topic mismatch: {to_gz} vs {pol_pubs & sim_subs}"
    # each topic set only remaps topics the policy node uses (before remapping)
    policy_names = {t for t, _ in pol_pubs | pol_subs} | set(embedded_remaps)
    for name in ("embedded", "gazebo", "isaac"):
        remaps = yaml.safe_load((REPO_ROOT / "config" / f"topics_{name}.yaml").read_text())["remappings"]
        unknown = set(remaps) - policy_names
        assert not unknown, f"topics_{name}.yaml remaps topics no wallx_ros node uses: {unknown}"
        assert remaps["/wallx_policy/joint_trajectory"] == TRAJECTORY_TOPIC
