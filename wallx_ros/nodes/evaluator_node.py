"""Evaluator node: closed-loop episodes of the policy node in the simulation, one seed each, scored on sim time.

First it waits until the policy node is active (it configures and activates itself, ``autostart``).
Per episode: deactivate ``<policy_node>`` (lifecycle; it holds), set ``<sim_node>``'s ``seed`` and call its
``~/reset``, wait ``settle_s``, activate the policy, let it run ``episode_s`` sim seconds, deactivate it.
Meanwhile it scores the episode from ``joint_states``, ``objects/box/pose`` and ``<sim_node>/task_stage``
(:mod:`wallx_ros.sim.episode_metrics`: final and best stage, gripper-to-cube distances) and the policy's
``<policy_node>/status`` (the command jump at each chunk switch, before and after blending). Results go to
the log and to ``result_file`` (JSON); the node exits 0 when every episode ran (whatever the success rate),
1 when the policy could not be activated or a service did not answer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
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
from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.episode_metrics import EpisodeMetrics, EpisodeResult
from wallx_ros.sim.errors import SimError

__all__ = ["TABLE", "EvaluatorNode", "main"]


TABLE = ParameterTable("wallx_evaluator", [
    Param("episodes", ParamType.INTEGER, 3, "closed-loop episodes to run (then the node exits)", low=1),
    Param("first_seed", ParamType.INTEGER, 1000, "cube placement seed of the first episode (+1 per episode)", low=0),
    Param("episode_s", ParamType.DOUBLE, 16.0, "sim seconds the policy runs per episode", low=1e-3),
    Param("settle_s", ParamType.DOUBLE, 0.5, "sim seconds the cube settles after a reset before the policy starts",
          low=0.0),
    Param("sim_node", ParamType.STRING, "/wallx_sim", "simulation node (seed parameter, ~/reset, ~/task_stage)"),
    Param("policy_node", ParamType.STRING, "/wallx_policy", "policy node (lifecycle services, ~/status)"),
    Param("result_file", ParamType.STRING, "", "JSON file for the results; '' = log only"),
    Param("service_timeout_s", ParamType.DOUBLE, 300.0, "wall seconds to wait for a service (activation warms up)",
          low=1e-3),
], summary="Closed-loop transfer-cube episodes of the policy node in the sim, scored like the bare rollout.")


class EvaluatorNode(Node):
    """Runs and scores closed-loop episodes; see the module doc."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        values = declare_and_read(self, TABLE)

        def get(name: str) -> Any:
            return values[name]

        self.episodes = int(get("episodes"))
        self.first_seed = int(get("first_seed"))
        self.episode_s = float(get("episode_s"))
        self.settle_s = float(get("settle_s"))
        if self.episodes < 1 or self.first_seed < 0 or not self.episode_s > 0 or self.settle_s < 0:
            raise SimError("episodes must be >= 1, first_seed >= 0, episode_s > 0 and settle_s >= 0")
        self._timeout_s = float(get("service_timeout_s"))
        result = str(get("result_file"))
        self._result_path = Path(result) if result else None
        sim, policy = str(get("sim_node")).rstrip("/"), str(get("policy_node")).rstrip("/")
        self.scene = AlohaScene("aloha_transfer_cube")  # forward kinematics only
        self._selector = JointSelector(self.scene.joint_names)
        self._positions: np.ndarray | None = None
        self._cube: np.ndarray | None = None
        self._stage = -1
        self._chunks_seen = -1
        self.results: list[EpisodeResult] = []
        self.exit_code: int | None = None
        self._metrics: EpisodeMetrics | None = None
        self._steps = self._plan()
        self._call: tuple[str, Any, float] | None = None
        self._wait_until_s: float | None = None
        self._waiting_since: float | None = None  # wall time the current step first waited (service, activation)

        self.create_subscription(JointState, "joint_states", self._on_joint_states, 10)
        self.create_subscription(PoseStamped, "objects/box/pose", self._on_cube, 10)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(Int32, f"{sim}/task_stage", self._on_stage, latched)
        self.create_subscription(DiagnosticStatus, f"{policy}/status", self._on_policy_status, 10)
        self._service_clients: dict[str, Any] = {
            "seed": self.create_client(SetParameters, f"{sim}/set_parameters"),
            "reset": self.create_client(Trigger, f"{sim}/reset"),
            "lifecycle": self.create_client(ChangeState, f"{policy}/change_state"),
            "state": self.create_client(GetState, f"{policy}/get_state"),
        }
        self.create_timer(0.02, self._tick)
        self.get_logger().info(f"evaluating {policy} in {sim}: {self.episodes} episodes of {self.episode_s:g} s "
                               f"from seed {self.first_seed}")

    # -- inputs ------------------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState) -> None:
        try:
            self._positions = np.asarray(self._selector.select(msg.name, msg.position), dtype=np.float64)
        except CoreError as err:
            self.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)
            return
        if self._metrics is not None and self._cube is not None:
            self._metrics.update(self._positions, self._cube, self._stage)

    def _on_cube(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._cube = np.array([p.x, p.y, p.z], dtype=np.float64)

    def _on_stage(self, msg: Int32) -> None:
        self._stage = int(msg.data)

    def _on_policy_status(self, msg: DiagnosticStatus) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        try:
            chunks = int(values.get("chunks_published", "-1"))
            raw = float(values.get("chunk_boundary_jump", "nan"))
            published = float(values.get("switch_position_jump", values.get("published_boundary_jump", "nan")))
            velocity = float(values.get("switch_velocity_jump", "nan"))
        except ValueError:
            return
        if self._metrics is not None and chunks > self._chunks_seen >= 0:
            first = self._metrics.chunks == 0
            self._metrics.chunk(None if first else published, None if first else raw, None if first else velocity)
        self._chunks_seen = chunks

    # -- the sequence ------------------------------------------------------------------------------------
    def _plan(self) -> list[tuple[str, Any]]:
        steps: list[tuple[str, Any]] = [("await_active", None)]
        for i in range(self.episodes):
            seed = self.first_seed + i
            steps += [("deactivate", None), ("seed", seed), ("reset", seed), ("wait", self.settle_s),
                      ("begin", seed), ("activate", None), ("wait", self.episode_s), ("deactivate", None),
                      ("end", seed)]
        return steps

    def _tick(self) -> None:
        now = self._now_s()
        if now <= 0.0 or self.exit_code is not None:
            return
        if self._call is not None:
            self._check_call()
            return
        if self._wait_until_s is not None:
            if now < self._wait_until_s:
                return
            self._wait_until_s = None
        if not self._steps:
            self._finish(0)
            return
        kind, arg = self._steps.pop(0)
        if kind == "wait":
            self._wait_until_s = now + float(arg)
        elif kind == "begin":
            self._metrics = EpisodeMetrics(self.scene, int(arg))
            self._chunks_seen = max(self._chunks_seen, 0)
        elif kind == "end":
            assert self._metrics is not None
            result = self._metrics.result()
            self._metrics = None
            self.results.append(result)
            self.get_logger().info(
                f"episode {len(self.results)}/{self.episodes} (seed {result.seed}): final stage {result.final_stage} "
                f"(best {result.best_stage}), right gripper within {result.min_right_gripper_to_cube_m:.3f} m of "
                f"the cube, {result.chunks} chunks")
            self._write()
        else:
            self._start_call(kind, arg)

    def _start_call(self, kind: str, arg: Any) -> None:
        if kind == "seed":
            value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(arg))
            request: Any = SetParameters.Request(parameters=[ParameterMsg(name="seed", value=value)])
        elif kind == "reset":
            request = Trigger.Request()
        elif kind == "await_active":
            request = GetState.Request()
            kind = "await_active:state"
        else:
            transition = Transition.TRANSITION_ACTIVATE if kind == "activate" else Transition.TRANSITION_DEACTIVATE
            request = ChangeState.Request()
            request.transition.id = transition
            kind = f"{kind}:lifecycle"
        client = self._service_clients[kind.split(":")[-1]]
        if not client.service_is_ready():  # not discovered yet (or the node is still starting): retry shortly
            self._retry(kind.split(":")[0], arg, f"service {client.srv_name} is not available")
            return
        self._call = (kind, client.call_async(request), time.monotonic())

    def _retry(self, kind: str, arg: Any, why: str) -> None:
        now = time.monotonic()
        self._waiting_since = self._waiting_since or now
        if now - self._waiting_since > self._timeout_s:
            self.get_logger().error(f"{why} after {self._timeout_s:g} s")
            self._finish(1)
            return
        self._steps.insert(0, (kind, arg))
        self._wait_until_s = self._now_s() + 0.2

    def _check_call(self) -> None:
        assert self._call is not None
        kind, future, started = self._call
        if not future.done():
            if time.monotonic() - started > self._timeout_s:
                self.get_logger().error(f"{kind}: no answer within {self._timeout_s:g} s")
                self._finish(1)
            return
        self._call = None
        result = future.result()
        if kind == "await_active:state":
            if result.current_state.id != State.PRIMARY_STATE_ACTIVE:
                self._retry("await_active", None, f"the policy node is still {result.current_state.label!r}")
            else:
                self._waiting_since = None
            return
        self._waiting_since = None
        if kind == "seed" and not (result.results and result.results[0].successful):
            self.get_logger().error("the simulation refused the seed")
            self._finish(1)
        elif kind == "reset" and not result.success:
            self.get_logger().error(f"reset failed: {result.message}")
            self._finish(1)
        elif kind == "activate:lifecycle" and not result.success:
            self.get_logger().error("the policy node refused to activate (see its log)")
            self._finish(1)
        # a refused deactivation means it was not active (the first episode, or it failed): nothing to stop

    def _summary(self) -> dict[str, Any]:
        runs = self.results
        jumps = [j for r in runs for j in r.switch_jumps]
        raw = [j for r in runs for j in r.raw_switch_jumps]
        velocity = [j for r in runs for j in r.velocity_jumps]
        return {
            "episodes": len(runs), "successes": sum(r.success for r in runs),
            "success_rate": sum(r.success for r in runs) / len(runs) if runs else 0.0,
            "stage_reached": {str(s): sum(r.best_stage >= s for r in runs) for s in (1, 2, 3, 4)},
            "min_right_gripper_to_cube_m_median": float(np.median([r.min_right_gripper_to_cube_m for r in runs]))
            if runs else None,
            "final_left_gripper_to_cube_m_median": float(np.median([r.final_left_gripper_to_cube_m for r in runs]))
            if runs else None,
            "published_switch_jump_median": float(np.median(jumps)) if jumps else None,
            "raw_switch_jump_median": float(np.median(raw)) if raw else None,
            "switch_velocity_jump_median": float(np.median(velocity)) if velocity else None,
            "switches_sampled": len(jumps),
            "first_seed": self.first_seed, "episode_s": self.episode_s,
            "runs": [r.summary() for r in runs],
        }

    def _write(self) -> None:
        if self._result_path is not None:
            self._result_path.parent.mkdir(parents=True, exist_ok=True)
            self._result_path.write_text(json.dumps(self._summary(), indent=1) + "\n")

    def _finish(self, code: int) -> None:
        summary = self._summary()
        self.get_logger().info(f"done: {summary['successes']}/{self.episodes} successes in {len(self.results)} "
                               "episodes run")
        self._write()
        self.exit_code = code
        self.context.try_shutdown()


def main(args: list[str] | None = None) -> int:
    # the node's exit_code (set when its batch is done) is the process's: spin_node returns it
    return spin_node(EvaluatorNode, args=args, logger_name=TABLE.node_name, table=TABLE, startup_errors=(SimError,))


if __name__ == "__main__":
    raise SystemExit(main())
