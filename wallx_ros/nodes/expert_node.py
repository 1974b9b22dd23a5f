"""Expert node: the scripted transfer-cube demonstrator as a leader arm, episode after episode, on sim time.

Publishes ``leader/joint_states`` (JointState, robot joint names, at ``rate_hz``): a teleop node in leader
mode mirrors it onto the follower, exactly as it would mirror a human's leader arm, so the recorder stores
what a teleoperated demonstration stores. Reads ``joint_states`` (the follower), ``objects/box/pose`` (the
cube, geometry_msgs/PoseStamped, from the simulation node) and ``<sim_node>/task_stage``. Per episode
(:mod:`wallx_ros.sim.demonstration`): leader home -> ``<sim_node>/set_parameters`` seed +
``<sim_node>/reset`` -> settle -> plan from the cube pose -> ``<recorder_node>/start_episode`` -> play the
plan -> ``<recorder_node>/stop_episode`` (success) or ``discard_episode``. Every attempt is appended to
``episode_log`` (JSONL: seed, cube, final stage, kept). The node exits (code 0) when ``episodes``
demonstrations are kept, or after ``max_attempts`` (code 1: fewer kept).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Int32
from std_srvs.srv import Trigger

from wallx_ros.core.errors import CoreError
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.nodes.executors import spin_node
from wallx_ros.nodes.parameters import declare_and_read
from wallx_ros.nodes.ros_conversions import stamp_to_ns
from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.demonstration import DemoConfig, DemoRequest, DemoSequencer, Phase
from wallx_ros.sim.errors import SimError

__all__ = ["TABLE", "ExpertNode", "main"]

_SERVICE = {DemoRequest.START: "start_episode", DemoRequest.SAVE: "stop_episode",
            DemoRequest.DISCARD: "discard_episode"}


_D = DemoConfig()
_I, _D_, _B, _S = ParamType.INTEGER, ParamType.DOUBLE, ParamType.BOOL, ParamType.STRING
TABLE = ParameterTable("wallx_expert", [
    Param("episodes", _I, _D.episodes, "demonstrations to keep (then the node exits)", low=1),
    Param("first_seed", _I, _D.first_seed, "cube placement seed of the first attempt (+1 per attempt)", low=0),
    Param("max_attempts", _I, _D.max_attempts, "give up after this many attempts (0: 2 x episodes)", low=0),
    Param("keep_failed", _B, _D.keep_failed, "also save episodes that did not end in success"),
    Param("settle_s", _D_, _D.settle_s, "sim seconds the cube settles after a reset before planning", low=0.0),
    Param("lead_in_s", _D_, _D.lead_in_s, "sim seconds recorded before the demonstration moves", low=0.0),
    Param("tail_s", _D_, _D.tail_s, "sim seconds recorded after the demonstration ends", low=0.0),
    Param("home_velocity", _D_, _D.home_velocity, "rad/s of the leader's return to the start pose", low=1e-6),
    Param("home_tolerance", _D_, _D.home_tolerance, "rad: arm joints this close to the start pose = home", low=1e-6),
    Param("home_timeout_s", _D_, _D.home_timeout_s, "reset anyway after this long waiting to be home", low=0.0),
    Param("max_velocity", _D_, _D.max_velocity, "arm joint speed limit of the plan (rad/s)", low=1e-6),
    Param("max_gripper_velocity", _D_, _D.max_gripper_velocity, "gripper speed limit (normalised/s)", low=1e-6),
    Param("rate_hz", _D_, 50.0, "leader joint-state rate (sim time)", low=1e-3, high=10_000.0),
    Param("sim_node", _S, "/wallx_sim", "simulation node: its reset service, seed parameter, task stage"),
    Param("recorder_node", _S, "/wallx_recorder", "recorder node (its episode services); '' = do not record"),
    Param("episode_log", _S, "", "JSONL file: one line per attempt (seed, cube, stage, kept); '' = none"),
    Param("service_timeout_s", _D_, 120.0, "wall seconds to wait for a service (saving an episode)", low=1e-3),
], summary="Scripted transfer-cube demonstrations on the leader topic, sequencing the sim's resets and the "
           "recorder's episodes.")


class ExpertNode(Node):
    """Plays scripted demonstrations on the leader topic and sequences the sim and recorder services."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        values = declare_and_read(self, TABLE)

        def get(name: str) -> Any:
            return values[name]

        recorder = str(get("recorder_node")).rstrip("/")
        config = DemoConfig(
            episodes=int(get("episodes")), first_seed=int(get("first_seed")), max_attempts=int(get("max_attempts")),
            record=bool(recorder), keep_failed=bool(get("keep_failed")), settle_s=float(get("settle_s")),
            lead_in_s=float(get("lead_in_s")), tail_s=float(get("tail_s")),
            home_velocity=float(get("home_velocity")), home_tolerance=float(get("home_tolerance")),
            home_timeout_s=float(get("home_timeout_s")), max_velocity=float(get("max_velocity")),
            max_gripper_velocity=float(get("max_gripper_velocity")))
        rate = float(get("rate_hz"))
        if not rate > 0:
            raise SimError(f"rate_hz must be > 0, got {rate}")
        self._timeout_s = float(get("service_timeout_s"))
        log = str(get("episode_log"))
        self._log_path = Path(log) if log else None
        self.scene = AlohaScene("aloha_transfer_cube")  # kinematics for planning; never stepped
        self.sequencer = DemoSequencer(self.scene, config)
        self._names = list(self.scene.joint_names)
        self._selector = JointSelector(self.scene.joint_names)
        self._follower: np.ndarray | None = None
        self._cube: tuple[float, np.ndarray] | None = None
        self._stage = -1
        self._call: Any = None  # (request, future, started wall time)
        self._logged = 0
        self.exit_code: int | None = None  # set when the demonstrations are done

        sim = str(get("sim_node")).rstrip("/")
        self._leader_pub = self.create_publisher(JointState, "leader/joint_states", 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, 10)
        self.create_subscription(PoseStamped, "objects/box/pose", self._on_cube, 10)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(Int32, f"{sim}/task_stage", self._on_stage, latched)
        self._set_params = self.create_client(SetParameters, f"{sim}/set_parameters")
        self._service_clients = {DemoRequest.RESET: self.create_client(Trigger, f"{sim}/reset")}
        if recorder:
            for request, service in _SERVICE.items():
                self._service_clients[request] = self.create_client(Trigger, f"{recorder}/{service}")
        self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(
            f"expert: {config.episodes} transfer-cube demonstrations from seed {config.first_seed} on "
            f"{self.resolve_topic_name('leader/joint_states')}; sim {sim}, recorder {recorder or '(none)'}")

    # -- inputs ------------------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState) -> None:
        try:
            self._follower = np.asarray(self._selector.select(msg.name, msg.position), dtype=np.float64)
        except CoreError as err:
            self.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)

    def _on_cube(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        position = np.array([p.x, p.y, p.z], dtype=np.float64)
        if np.all(np.isfinite(position)):
            self._cube = (stamp_to_ns(msg.header.stamp) * 1e-9, position)

    def _on_stage(self, msg: Int32) -> None:
        self._stage = int(msg.data)

    # -- the loop ----------------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self._now_s()
        if now <= 0.0:
            return  # no /clock yet
        seq = self.sequencer
        if self._call is not None:
            self._check_call(now)
        leader = seq.step(now, self._follower, self._cube, self._stage)
        if seq.pending is not None and self._call is None:
            self._start_call(seq.pending)
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = self._names
        msg.position = leader.tolist()
        self._leader_pub.publish(msg)
        self._write_log()
        if seq.phase is Phase.DONE and seq.pending is None and self.exit_code is None:
            kept, wanted = seq.kept, seq.config.episodes
            self.get_logger().info(f"done: {kept}/{wanted} demonstrations kept in {seq.attempt} attempts")
            self.exit_code = 0 if kept >= wanted else 1
            self.context.try_shutdown()

    def _start_call(self, request: DemoRequest) -> None:
        import time

        client = self._set_params if request is DemoRequest.RESET else self._service_clients[request]
        if not client.service_is_ready():  # not discovered yet: try again at the next tick
            self.get_logger().warn(f"waiting for the service {client.srv_name}", throttle_duration_sec=5.0)
            return
        if request is DemoRequest.RESET:  # the seed first, then the reset
            value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=self.sequencer.seed)
            future = self._set_params.call_async(SetParameters.Request(
                parameters=[ParameterMsg(name="seed", value=value)]))
            self._call = ("seed", future, time.monotonic())
            return
        self._call = (request, self._service_clients[request].call_async(Trigger.Request()), time.monotonic())

    def _check_call(self, now: float) -> None:
        import time

        what, future, started = self._call
        if not future.done():
            if time.monotonic() - started > self._timeout_s:
                self.get_logger().error(f"{what}: no answer in {self._timeout_s:g} s; abandoning this attempt")
                future.cancel()
                self._call = None
                if self.sequencer.pending is not None:
                    self.sequencer.done(self.sequencer.pending, False, now, "timed out")
            return
        self._call = None
        result = future.result()
        if what == "seed":
            ok = bool(result.results) and bool(result.results[0].successful)
            if not ok:
                self.sequencer.done(DemoRequest.RESET, False, now, "the simulation refused the seed")
                return
            self._call = (DemoRequest.RESET, self._service_clients[DemoRequest.RESET].call_async(Trigger.Request()),
                          time.monotonic())
            return
        self.get_logger().info(f"{what.value}: {result.message}")
        self.sequencer.done(what, bool(result.success), now, str(result.message))

    def _write_log(self) -> None:
        records = self.sequencer.records
        finished = [r for r in records if r.attempt < self.sequencer.attempt]
        for record in finished[self._logged:]:
            line = json.dumps(asdict(record))
            verdict = "kept" if record.kept else "not kept"
            self.get_logger().info(f"attempt {record.attempt} (seed {record.seed}): final stage "
                                   f"{record.final_stage}, {verdict} {record.note}".rstrip())
            if self._log_path is not None:
                self._log_path.parent.mkdir(parents=True, exist_ok=True)
                with self._log_path.open("a") as f:
                    f.write(line + "\n")
        self._logged = len(finished)


def main(args: list[str] | None = None) -> int:
    # the node's exit_code (set when its batch is done) is the process's: spin_node returns it
    return spin_node(ExpertNode, args=args, logger_name=TABLE.node_name, table=TABLE, startup_errors=(SimError,))


if __name__ == "__main__":
    raise SystemExit(main())
