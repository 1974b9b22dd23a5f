"""Policy node (lifecycle): cameras + joint states in, WALL-OSS chunks out as safe robot commands.

Lifecycle: configure loads the model (and warms it up), activate starts control, deactivate sends a
hold and stops publishing, cleanup unloads. With ``autostart`` (default) the node configures and
activates itself; otherwise drive it with ``ros2 lifecycle set /wallx_policy configure|activate``.

Data flow (one camera frame to the trajectory)::

    ObservationInputs (decode + resize at arrival, StreamSync by stamp)    nodes/observation_inputs.py
      -> _maybe_submit: latest synced set, when the execution horizon is due  (control callback group)
      -> InferenceWorker thread: backend.predict_chunk (latest observation wins)    policy/
      -> guard condition -> _on_results: PolicyControl.on_chunk (mapping, blending, limits, JTC rules)
      -> JointTrajectory on ~/joint_trajectory (or action goal / streamed commands / dry-run topic)

A control timer (control_rate_hz) runs the stale-input watchdog (hold within two control periods),
the streaming output and the ghost. Services: ~/pause, ~/resume (std_srvs/Trigger), ~/estop
(std_srvs/SetBool: true engages and latches, false releases into pause). /diagnostics and ~/status
(DiagnosticStatus with the fields of msg/PolicyStatus.msg) at diagnostics_rate_hz.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from wallx_ros import ros_compat
from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.errors import CoreError
from wallx_ros.core.joint_trajectory_rules import hazards, validate
from wallx_ros.core.latency import LatencyTracker
from wallx_ros.core.policy_control import ControlConfig, ControlMode, PolicyControl, TrajectoryCommand
from wallx_ros.core.safety import JointLimits, SafetyFilter
from wallx_ros.core.transport_timing import TransportReport, TransportTimingConfig
from wallx_ros.core.types import Observation
from wallx_ros.core.urdf import UrdfModel
from wallx_ros.nodes.command_stream import CommandStreamer
from wallx_ros.nodes.executors import MultiThreadedExecutor
from wallx_ros.nodes.observation_inputs import JOINT_STREAM, ObservationInputs
from wallx_ros.nodes.policy_parameters import DIAGNOSTICS_RATE_RANGE, PolicyNodeConfig, declare_all, read_config
from wallx_ros.nodes.policy_status import PolicyStatusPublisher, StatusFields, path_markers
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns, trajectory_from_arrays
from wallx_ros.nodes.transport_diagnostics import transport_status
from wallx_ros.policy import PolicyBackend, load_backend
from wallx_ros.policy.errors import PolicyError
from wallx_ros.policy.inference_worker import InferenceResult, InferenceWorker

__all__ = ["PolicyNode", "main"]

_NS = 1_000_000_000
_CLOCK_JUMP_NS = 10_000_000  # the control clock going back more than this is a jump (simulation reset)
_STAGES = ("input_age", "decode", "preprocess", "inference", "postprocess", "handoff", "publish", "model",
           "end_to_end", "overhead")


@dataclass(frozen=True)
class _Submitted:
    robot_state: np.ndarray
    oldest_stamp_ns: int
    decode_ms: float
    input_age_ms: float


class PolicyNode(LifecycleNode):
    """Runs one WALL-OSS policy on the robot's cameras and joint states."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("wallx_policy", **kwargs)
        declare_all(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.config: PolicyNodeConfig | None = None
        self.backend: PolicyBackend | None = None
        self.control: PolicyControl | None = None
        self.inputs: ObservationInputs | None = None
        self.configure_error = ""
        self.latency = LatencyTracker(_STAGES)
        self.status = StatusFields()
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._streamer: CommandStreamer | None = None
        self._results: list[InferenceResult] = []
        self._inflight: dict[int, _Submitted] = {}
        self._instruction = str(self.get_parameter("instruction").value)
        self._last_submitted_stamp = -1
        self._expected_latency_s = 0.0
        self._transport_cache: tuple[float, TransportReport, ObservationInputs] | None = None
        self._last_ghost = 0.0
        self._last_tick_ns = 0
        self._worker: InferenceWorker | None = None
        self._entities: list[Any] = []
        self._urdf: UrdfModel | None = None
        self._fjt: Any = None
        self._control_group = MutuallyExclusiveCallbackGroup()
        self._input_group = ReentrantCallbackGroup()
        # diagnostics and status exist in every lifecycle state (they say why the node is not running)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._status = PolicyStatusPublisher(self)
        value = self.get_parameter("diagnostics_rate_hz").value
        rate = float(value) if isinstance(value, int | float) else 1.0
        low, high = DIAGNOSTICS_RATE_RANGE  # an invalid rate is refused at configure; until then 1 Hz
        # steady clock: diagnostics keep coming while a simulation is paused (they say why nothing moves)
        self.create_timer(1.0 / rate if low <= rate <= high else 1.0, self._publish_diagnostics,
                          callback_group=self._control_group, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.create_service(Trigger, "~/pause", self._on_pause, callback_group=self._control_group)
        self.create_service(Trigger, "~/resume", self._on_resume, callback_group=self._control_group)
        self.create_service(SetBool, "~/estop", self._on_estop, callback_group=self._control_group)
        self.create_subscription(String, "~/instruction", self._on_instruction, 10, callback_group=self._control_group)

    # -- lifecycle ----------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (PolicyError, CoreError) as err:
            self.configure_error = str(err)
            self.get_logger().error(f"configure failed: {err}")
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        except Exception as err:  # rclpy swallows exceptions of transition callbacks: say what happened
            self.configure_error = f"unexpected {type(err).__name__}: {err}"
            self.get_logger().error(f"configure failed:\n{traceback.format_exc()}")
            self._teardown()
            return TransitionCallbackReturn.ERROR
        self.configure_error = ""
        return super().on_configure(state)

    def _configure(self) -> None:
        cfg = read_config(self)
        sys.setswitchinterval(cfg.gil_switch_interval_s)
        self.get_logger().info(f"loading {cfg.backend.checkpoint_dir} on {cfg.backend.device}")
        backend = load_backend(cfg.backend)
        cameras = cfg.cameras or backend.cameras
        if set(cameras) != set(backend.cameras):
            raise PolicyError(f"cameras {list(cameras)} must be the checkpoint's cameras {list(backend.cameras)} "
                              "(in any order); map them to your topics with camera_topics or remaps")
        state_names = cfg.state_joint_names or backend.state_names
        action_names = cfg.action_joint_names or backend.action_names
        if len(state_names) != len(backend.state_names) or len(action_names) != len(backend.action_names):
            raise PolicyError(f"state_joint_names/action_joint_names need {len(backend.state_names)}/"
                              f"{len(backend.action_names)} names (the checkpoint's dims), got "
                              f"{len(state_names)}/{len(action_names)}")
        mapping = ActionMapping.build(state_names, action_names, cfg.action_type, cfg.gripper_joints,
                                      cfg.gripper_scale, cfg.gripper_offset)
        base_limits = None
        urdf_text = ""
        if cfg.urdf_path:
            self._urdf = UrdfModel.from_file(cfg.urdf_path)
        elif cfg.robot_description:
            urdf_text = cfg.robot_description
            self._urdf = UrdfModel.from_string(urdf_text)
        if self._urdf is not None:
            base_limits = JointLimits.from_mapping(action_names, self._urdf.limits())
        limits = JointLimits.from_parameters(action_names, cfg.position_lower, cfg.position_upper, cfg.max_velocity,
                                             base_limits)
        if not limits.any_limit:
            self.get_logger().warning("no joint limits configured (position_lower/upper, max_velocity or a URDF): "
                                      "only NaN/Inf and controller rules are checked")
        fps = backend.fps
        control_rate = cfg.control_rate_hz or fps
        control_cfg = ControlConfig(cfg.execution, cfg.controller_joints, cfg.jtc, hold_time_s=2.0 / control_rate)
        self.control = PolicyControl(control_cfg, mapping, SafetyFilter(limits, cfg.limit_violation), 1.0 / fps)
        if cfg.warmup:
            self.get_logger().info(f"warm-up inference took {backend.warmup():.0f} ms")
        # the model's large object graph never becomes garbage: keep the cyclic GC from walking it (no GC
        # pauses in the control loop, and a fast exit instead of a multi-second final collection)
        gc.collect()
        gc.freeze()
        self.config, self.backend = cfg, backend
        problem = self._instruction_problem(cfg.instruction)
        if problem:
            raise PolicyError(f"parameter instruction: {problem}")
        self._instruction = cfg.instruction
        grid = {cam: (int(shape[1]), int(shape[2])) for cam, shape in getattr(backend, "image_shapes", {}).items()}
        topics = dict(zip(cfg.cameras, cfg.camera_topics, strict=True)) if cfg.camera_topics else None
        self.inputs = ObservationInputs(
            self, cameras, state_names, transport=cfg.camera_transport, image_grid=grid,
            sync_tolerance_s=cfg.sync_tolerance_s, max_age_s=cfg.max_age_s, camera_topics=topics,
            callback_group=self._input_group, on_message=self._on_input_message, use_cv_bridge=cfg.use_cv_bridge,
            transport_timing=TransportTimingConfig(cfg.clock_tolerance_s, cfg.max_transport_delay_s))
        self._make_outputs(cfg)
        self._result_ready = self.create_guard_condition(self._on_results, callback_group=self._control_group)
        self._entities.append(self._result_ready)
        self._entities.append(self.create_timer(1.0 / control_rate, self._on_control_tick,
                                                callback_group=self._control_group))
        self._worker = InferenceWorker(backend, self._on_worker_result)
        self._worker.start()
        if self._stream_pub is not None and not self._sim_time():
            self._streamer = CommandStreamer(self._stream_tick, 1.0 / control_rate, cfg.stream_priority,
                                             on_warning=lambda m: self.get_logger().warning(m))
            self._streamer.start()
        prefix = "~/dry_run/" if cfg.dry_run else "~/"
        self.get_logger().info(
            f"configured: cameras {list(cameras)} ({cfg.camera_transport}, images via {self.inputs.converter.backend}),"
            f" joints {list(state_names)} -> {cfg.output_mode} on "
            f"{self.resolve_topic_name(prefix + 'joint_trajectory')}"
            f", {fps:g} fps, horizon {cfg.execution.execution_horizon}, control {control_rate:g} Hz"
            f", engine {backend.engine}")

    def _make_outputs(self, cfg: PolicyNodeConfig) -> None:
        prefix = "~/dry_run/" if cfg.dry_run else "~/"
        self._traj_pub = self.create_lifecycle_publisher(JointTrajectory, prefix + "joint_trajectory", 10)
        self._stream_pub = None
        if cfg.output_mode == "joint_state":
            self._stream_pub = self.create_lifecycle_publisher(JointState, prefix + "joint_commands", 10)
        elif cfg.output_mode == "array":
            self._stream_pub = self.create_lifecycle_publisher(Float64MultiArray, prefix + "commands", 10)
        elif cfg.output_mode == "action" and not cfg.dry_run:
            from wallx_ros.nodes.follow_joint_trajectory import FollowJointTrajectoryOutput

            self._fjt = FollowJointTrajectoryOutput(self, cfg.action_name, self._control_group)
        self._ghost_pub = self.create_lifecycle_publisher(JointState, "~/ghost/joint_states", 10)
        self._jump_pub = self.create_lifecycle_publisher(Float64, "~/boundary_jump", 10)
        self._marker_pub = (self.create_lifecycle_publisher(MarkerArray, "~/predicted_path", 10)
                            if self._urdf is not None else None)
        self._entities += [p for p in (self._traj_pub, self._stream_pub, self._ghost_pub, self._jump_pub,
                                       self._marker_pub) if p is not None]

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.control is None:
            return TransitionCallbackReturn.FAILURE
        self.control.activate(self._now_ns())
        with self._submit_lock:
            self._last_submitted_stamp = -1
        try:
            result = super().on_activate(state)
        except Exception:
            self.get_logger().error(f"activate failed:\n{traceback.format_exc()}")
            return TransitionCallbackReturn.ERROR
        self.get_logger().info("active: control started")
        self._maybe_submit()
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.control is not None:
            self._send_hold(self.control.deactivate(self._now_ns()))
        self.get_logger().info("inactive: holding, publishing stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.control is not None and self.control.mode is not ControlMode.INACTIVE:
            self._send_hold(self.control.deactivate(self._now_ns()))
        self._teardown()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _sim_time(self) -> bool:
        return bool(self.get_parameter("use_sim_time").value)

    def _teardown(self) -> None:
        if self._streamer is not None:
            self._streamer.stop()
            self._streamer = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self.inputs is not None:
            self.inputs.destroy()
            self.inputs = None
        for entity in self._entities:
            if hasattr(entity, "cancel"):
                entity.cancel()
                self.destroy_timer(entity)
            elif hasattr(entity, "trigger"):
                self.destroy_guard_condition(entity)
            else:
                self.destroy_lifecycle_publisher(entity)
        self._entities.clear()
        self.control = None
        self.backend = None
        self.config = None

    # -- parameters / instruction -------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "instruction":
                reason = self._instruction_problem(str(p.value))
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
                self._instruction = str(p.value)
        return SetParametersResult(successful=True)

    def _instruction_problem(self, text: str) -> str:
        limit = int(self.get_parameter("max_instruction_length").value)
        if len(text) > limit:
            return f"instruction of {len(text)} characters refused: max_instruction_length is {limit}"
        check = getattr(self.backend, "instruction_problem", None)  # the model's own rules (control tokens)
        return str(check(text)) if check is not None else ""

    def _on_instruction(self, msg: String) -> None:
        reason = self._instruction_problem(msg.data)
        if reason:
            self.status.last_problem = reason
            self.get_logger().error(f"~/instruction: {reason}; keeping {self._instruction[:60]!r}",
                                    throttle_duration_sec=2.0)
            return
        if msg.data != self._instruction:
            self.get_logger().info(f"instruction: {msg.data[:200]!r}")
        self._instruction = msg.data

    # -- inference ----------------------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _on_input_message(self, stream: str) -> None:
        """Any input thread, right after a message was stored: submit at once if the model is free."""
        worker = self._worker
        if worker is not None and not worker.busy:
            self._maybe_submit()

    def _maybe_submit(self) -> None:
        """Hand the latest synced observation to the worker if one is due. Called from input threads and the
        control group: the lock makes it single-entry; it only reads control state (atomic attribute reads)."""
        if not self._submit_lock.acquire(blocking=False):
            return
        try:
            self._submit()
        finally:
            self._submit_lock.release()

    def _submit(self) -> None:
        control, inputs, worker = self.control, self.inputs, self._worker
        if control is None or inputs is None or worker is None or worker.busy:
            return
        now = self._now_ns()
        # the chunk must reach the robot in time: inference plus the trip back over the network
        if not control.replan_due(now, self._expected_latency_s + self._one_way_delay_s()):
            return
        synced = inputs.sync.latest_synced(now)
        if not synced.ok or synced.samples is None or self._clock_problems():
            return
        stamp = synced.stamp_ns
        if stamp <= self._last_submitted_stamp:
            return  # nothing new since the last observation
        if self.config is not None and stamp - now > round(self.config.max_age_s * _NS):
            # from the future: the publishers' clock is ahead (use_sim_time mismatch) or ours jumped back
            self.get_logger().warning(f"inputs stamped {(stamp - now) / _NS:.3f} s in the future of this node's clock: "
                                      "not used (check use_sim_time and clock sync)", throttle_duration_sec=2.0)
            return
        joints = synced.samples[JOINT_STREAM].value
        frames = {cam: synced.samples[cam].value for cam in inputs.cameras}
        obs = Observation(images={cam: f.rgb for cam, f in frames.items()},
                          state=control.mapping.state_to_model(joints.positions),
                          instruction=self._instruction, stamp_ns=stamp)
        self._last_submitted_stamp = stamp
        with self._lock:
            self._inflight[id(obs)] = _Submitted(joints.positions, synced.oldest_stamp_ns,
                                                 max(f.decode_ms for f in frames.values()),
                                                 (now - synced.oldest_stamp_ns) / 1e6)
        worker.submit(obs)

    def _on_worker_result(self, result: InferenceResult) -> None:
        """Worker thread: queue the result and wake the executor."""
        with self._lock:
            self._results.append(result)
        self._result_ready.trigger()

    def _on_results(self) -> None:
        with self._lock:
            results, self._results = self._results, []
        for result in results:
            with self._lock:
                meta = self._inflight.pop(id(result.observation), None)
            self._handle_result(result, meta)
        self._maybe_submit()

    def _handle_result(self, result: InferenceResult, meta: _Submitted | None) -> None:
        control, cfg = self.control, self.config
        if control is None or cfg is None or meta is None:
            return
        self._expected_latency_s = 0.7 * self._expected_latency_s + 0.3 * (time.monotonic() - result.started_monotonic)
        control.observe(meta.robot_state)
        if result.chunk is None:
            self._reject(f"inference failed: {result.error}")
            return
        chunk = result.chunk
        t0 = time.monotonic()
        handoff_ms = (t0 - result.finished_monotonic) * 1e3
        now = self._now_ns()
        # the chunk takes over on the robot once it got there: switch (blend, skip past points, expiry) at
        # now + the measured one-way transport delay (0 on one host)
        arrival = now + round(self._one_way_delay_s() * 1e9)
        # the JTC rules are checked on the final message in _send_command (check=False avoids doing it twice)
        outcome = control.on_chunk(chunk.actions, meta.robot_state, chunk.stamp_ns, arrival, check=False)
        post_ms = chunk.timings_ms.get("postprocess", 0.0) + (time.monotonic() - t0) * 1e3
        if outcome.raw_jump is not None:
            self.status.chunk_boundary_jump = outcome.raw_jump
            self.status.published_boundary_jump = outcome.published_jump or 0.0
        if outcome.command is None:
            self._reject("; ".join(outcome.problems))
            return
        t1 = time.monotonic()
        if not self._send_command(outcome.command, cfg):
            return
        publish_ms = (time.monotonic() - t1) * 1e3
        end_to_end_ms = (self._now_ns() - meta.oldest_stamp_ns) / 1e6
        timings = {"input_age": meta.input_age_ms, "decode": meta.decode_ms, "handoff": handoff_ms,
                   "preprocess": chunk.timings_ms.get("preprocess", float("nan")),
                   "inference": chunk.timings_ms.get("inference", float("nan")), "postprocess": post_ms,
                   "publish": publish_ms, "model": result.duration_ms, "end_to_end": end_to_end_ms,
                   "overhead": end_to_end_ms - result.duration_ms}
        self.latency.record_many(timings)
        st = self.status
        st.last_timings = timings
        st.observation_stamp_ns = chunk.stamp_ns
        st.skipped_points = outcome.past_points
        st.chunks_published += 1
        st.last_problem = ""
        if outcome.adjustments:
            self.get_logger().warning("limits: " + "; ".join(outcome.adjustments), throttle_duration_sec=2.0)
        if outcome.raw_jump is not None:
            self._jump_pub.publish(Float64(data=float(outcome.raw_jump)))
        if self._marker_pub is not None and self._urdf is not None and outcome.plan is not None:
            self._marker_pub.publish(path_markers(self._urdf, outcome.plan, cfg.marker_links, self.get_clock().now()))
        self._status.publish(self._status_fields())

    def _reject(self, reason: str) -> None:
        self.status.chunks_rejected += 1
        self.status.last_problem = reason
        self.get_logger().error(f"chunk not published: {reason}", throttle_duration_sec=1.0)

    # -- outputs ------------------------------------------------------------------------------------------
    def _send_command(self, command: TrajectoryCommand, cfg: PolicyNodeConfig) -> bool:
        """Publish a chunk or hold through the configured output; every message passes the JTC rules."""
        msg = trajectory_from_arrays(command.names, command.stamp_ns, command.times_from_start_ns,
                                     command.positions, command.velocities)
        assert self.control is not None
        problems = validate(msg.joint_names, msg.points, self.control.controller_joints, self._now_ns(),
                            stamp_to_ns(msg.header.stamp), cfg.jtc) + hazards(msg.joint_names, msg.points)
        if problems:
            self._reject("outgoing message failed the controller rules: " + "; ".join(problems))
            return False
        if cfg.output_mode in ("trajectory",) or cfg.dry_run:
            self._traj_pub.publish(msg)
        elif cfg.output_mode == "action" and self._fjt is not None:
            self._fjt.send(msg)
        return True  # streaming modes sample the committed plan in the control tick

    def _send_hold(self, command: TrajectoryCommand | None) -> None:
        if command is None or self.config is None:
            return
        if self._send_command(command, self.config):
            self.get_logger().warning(f"hold sent ({self.control.reason if self.control else ''})")
        self._status.publish(self._status_fields())

    def _transport(self) -> TransportReport | None:
        """The inputs' transport-delay report, recomputed at most every 0.1 s (percentiles over windows)."""
        if self.inputs is None:
            return None
        now = time.monotonic()
        cached = self._transport_cache
        if cached is None or now - cached[0] > 0.1 or cached[2] is not self.inputs:
            cached = self._transport_cache = (now, self.inputs.transport.report(self._now_ns()), self.inputs)
        return cached[1]

    def _one_way_delay_s(self) -> float:
        """Measured one-way transport delay robot -> this host (fastest stream, median); 0 until known.

        Simulated time has one clock and no network to compensate (sensor stamps may even run ahead of
        the last /clock message): 0 there."""
        report = None if self._sim_time() else self._transport()
        return (report.one_way_delay_s or 0.0) if report is not None else 0.0

    def _clock_problems(self) -> tuple[str, ...]:
        """A robot clock ahead of this host's (future stamps) or far behind makes every age wrong: hold.
        Not with simulated time (one clock for everybody; stamps can precede the /clock that reaches us)."""
        report = None if self._sim_time() else self._transport()
        return () if report is None or report.clocks_ok else (f"clocks: {report.message}",)

    def _on_control_tick(self) -> None:
        control, inputs, cfg = self.control, self.inputs, self.config
        if control is None or inputs is None or cfg is None:
            return
        now = self._now_ns()
        if now < self._last_tick_ns - _CLOCK_JUMP_NS:
            self._on_clock_jump(now, self._last_tick_ns)
        self._last_tick_ns = now
        synced = inputs.sync.latest_synced(now)
        self._send_hold(control.watchdog(now, synced.stream_problems + self._clock_problems()))
        if self._stream_pub is not None and self._streamer is None:  # simulated time: stream from this timer
            self._stream_tick(0)
        if cfg.ghost_rate_hz > 0 and control.executor.plan is not None \
                and time.monotonic() - self._last_ghost >= 1.0 / cfg.ghost_rate_hz:
            self._last_ghost = time.monotonic()
            ghost = JointState()
            ghost.header.stamp = time_from_ns(now)
            ghost.name = list(control.names)
            ghost.position = control.executor.plan.sample(now + round(cfg.ghost_lookahead_s * _NS)).tolist()
            self._ghost_pub.publish(ghost)
        self._maybe_submit()

    def _on_clock_jump(self, now: int, before: int) -> None:
        """Simulation reset / bag replay: nothing of the old timeline (samples, in-flight chunks) may be used."""
        assert self.control is not None and self.inputs is not None
        self.inputs.sync.clear()
        with self._lock:
            self._inflight.clear()  # chunks of observations taken before the jump are dropped on arrival
        with self._submit_lock:
            self._last_submitted_stamp = -1
        command = self.control.clock_jumped(now, before)
        self.status.last_problem = self.control.reason if self.control.reason.startswith("clock") else \
            f"clock jumped back {(before - now) / _NS:.3f} s"
        self.get_logger().warning(self.status.last_problem)
        self._send_hold(command)

    def _stream_tick(self, deadline_ns: int) -> None:
        """One streamed command (control timer under sim time, else the CommandStreamer thread)."""
        control, cfg = self.control, self.config
        if control is None or cfg is None or control.mode is ControlMode.INACTIVE:
            return
        now = self._now_ns()
        sample = control.stream_sample(now)
        if sample is not None:
            self._publish_stream(sample[0], sample[1], now, cfg)

    def _publish_stream(self, position: np.ndarray, velocity: np.ndarray, now: int, cfg: PolicyNodeConfig) -> None:
        assert self.control is not None and self._stream_pub is not None
        if not (np.all(np.isfinite(position)) and np.all(np.isfinite(velocity))):
            self._reject("stream sample is not finite: nothing published")
            return
        if cfg.output_mode == "joint_state":
            msg = JointState()
            msg.header.stamp = time_from_ns(now)
            msg.name = list(self.control.names)
            msg.position = position.tolist()
            msg.velocity = velocity.tolist()
            self._stream_pub.publish(msg)
        else:
            self._stream_pub.publish(Float64MultiArray(data=position.tolist()))

    # -- services -----------------------------------------------------------------------------------------
    def _on_pause(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.control is None or self.control.mode is ControlMode.INACTIVE:
            response.success, response.message = False, "node is not active"
            return response
        if self.control.mode is ControlMode.ESTOPPED:
            response.success, response.message = False, "e-stop is engaged"
            return response
        self._send_hold(self.control.pause(self._now_ns()))
        response.success, response.message = True, "paused: holding position, inference stopped"
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.control is None:
            response.success, response.message = False, "node is not configured"
            return response
        refusal = self.control.resume(self._now_ns())
        response.success, response.message = not refusal, refusal or "resumed"
        if not refusal:
            with self._submit_lock:
                self._last_submitted_stamp = -1
        return response

    def _on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if self.control is None:
            response.success, response.message = False, "node is not configured"
            return response
        if request.data:
            self._send_hold(self.control.estop(self._now_ns()))
            response.success, response.message = True, "e-stop engaged: holding; release with data false"
        else:
            refusal = self.control.release_estop(self._now_ns())
            response.success, response.message = not refusal, refusal or "e-stop released: paused, call ~/resume"
        self.get_logger().warning(response.message)
        return response

    # -- diagnostics --------------------------------------------------------------------------------------
    def _status_fields(self) -> StatusFields:
        st = self.status
        st.stamp_ns = self._now_ns()
        if self.control is None:
            st.state, st.hold_reason = "unconfigured", self.configure_error or "not configured"
        else:
            st.state, st.hold_reason = self.control.mode.value, self.control.reason
            st.state_since_ns = self.control.since_ns
        if self._worker is not None:
            st.observations_dropped = self._worker.dropped
        if self.inputs is not None:
            stats = self.inputs.sync.stats(st.stamp_ns)
            delays = [s.transport_delay_s for s in stats if s.transport_delay_s is not None]
            st.transport_delay_ms = max(delays) * 1e3 if delays else float("nan")
        return st

    def _publish_diagnostics(self) -> None:
        st = self._status_fields()
        self._status.publish(st)
        arr = DiagnosticArray()
        arr.header.stamp = time_from_ns(st.stamp_ns)
        name = self.get_fully_qualified_name()
        arr.status.append(self._status.as_diagnostic(st, f"{name}: control"))
        if self.inputs is not None:
            inputs = DiagnosticStatus(name=f"{name}: inputs", hardware_id="wallx_policy")
            bad = []
            for s in self.inputs.sync.stats(st.stamp_ns):
                inputs.values += [KeyValue(key=f"{s.name}.{k}", value=v) for k, v in s.as_dict().items()]
                inputs.values.append(KeyValue(key=f"{s.name}.topic", value=self.inputs.topics.get(s.name, "")))
                if s.last_error or s.age_s is None or (self.config and s.age_s > self.config.max_age_s):
                    bad.append(s.name)
            inputs.level = DiagnosticStatus.WARN if bad else DiagnosticStatus.OK
            inputs.message = f"stale, missing or bad: {bad}" if bad else "all streams fresh"
            arr.status.append(inputs)
            report = self._transport()
            if report is not None:
                arr.status.append(transport_status(report, f"{name}: transport"))
        lat = DiagnosticStatus(name=f"{name}: latency", hardware_id="wallx_policy", level=DiagnosticStatus.OK,
                               message="per stage: last / p50 / p99 / max (ms)")
        for stage, summary in self.latency.summary().items():
            lat.values.append(KeyValue(key=stage, value=summary.as_text()))
        arr.status.append(lat)
        gpu = self._gpu_status(name)
        if gpu is not None:
            arr.status.append(gpu)
        self._diag_pub.publish(arr)

    def _gpu_status(self, name: str) -> DiagnosticStatus | None:
        device = str(getattr(self.backend, "device", "cpu"))
        if not device.startswith("cuda"):
            return None
        import torch

        gib = 1024.0 ** 3
        memory = {"allocated_gib": torch.cuda.memory_allocated(device),
                  "reserved_gib": torch.cuda.memory_reserved(device),
                  "max_allocated_gib": torch.cuda.max_memory_allocated(device)}
        return DiagnosticStatus(name=f"{name}: gpu", hardware_id=device, level=DiagnosticStatus.OK,
                                message=torch.cuda.get_device_name(device),
                                values=[KeyValue(key=k, value=f"{v / gib:.3f}") for k, v in memory.items()])

    # -- start-up -----------------------------------------------------------------------------------------
    def autostart(self) -> bool:
        """Configure and activate (parameter autostart). False if either failed."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def hold_on_exit(self) -> None:
        """Best effort on SIGINT: leave the robot holding rather than finishing the last chunk."""
        if self.control is not None and self.control.mode is not ControlMode.INACTIVE:
            try:
                self._send_hold(self.control.deactivate(self._now_ns()))
            except Exception as err:  # the context may already be shut down
                self.get_logger().warning(f"could not send the exit hold: {err}")


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    # rclpy's own SIGINT handler would invalidate the context before we can send the exit hold: let SIGINT
    # (and SIGTERM) raise KeyboardInterrupt in the spinning thread instead, hold, then shut down.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)  # also when started with SIGINT ignored (nohup, &)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        # rclpy.init() is no context manager on Jazzy: ros_compat.init is one on both distributions
        with ros_compat.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
            node = PolicyNode()
            if bool(node.get_parameter("autostart").value) and not node.autostart():
                node.get_logger().fatal(f"cannot start: {node.configure_error or 'activation failed'}")
                node.destroy_node()
                return 1
            executor = MultiThreadedExecutor(num_threads=4)
            executor.add_node(node)
            try:
                executor.spin()
            except KeyboardInterrupt:
                node.get_logger().info("interrupted: holding and shutting down")
            finally:
                node.hold_on_exit()
                node._teardown()
                executor.shutdown(timeout_sec=2.0)
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
