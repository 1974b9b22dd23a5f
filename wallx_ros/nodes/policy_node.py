"""Policy node (lifecycle): cameras + joint states in, WALL-OSS chunks out as safe robot commands.

Lifecycle: configure loads the model (and warms it up), activate starts control, deactivate sends a
hold and stops publishing, cleanup unloads. With ``autostart`` (default) the node configures and
activates itself; otherwise drive it with ``ros2 lifecycle set /wallx_policy configure|activate``.

Data flow (one camera frame to the trajectory); this class wires the pieces to ROS::

    ObservationInputs (decode + resize at arrival, StreamSync by stamp)      nodes/observation_inputs.py
      -> PolicyPipeline.maybe_submit: latest synced set when the horizon is due    nodes/policy_pipeline.py
         (InferenceRequest: observation + its metadata, nodes/policy_requests.py)
      -> InferenceWorker thread: backend.predict_chunk (latest request wins)   policy/inference_worker.py
      -> guard condition -> PolicyPipeline.handle: PolicyControl.on_chunk (mapping, blending, limits)
      -> PolicyControl.check (JTC rules) -> PolicyOutputs: ~/joint_trajectory, action goal, streamed
         commands or dry-run; ghost, boundary jump, predicted path                nodes/policy_outputs.py

Configure builds the control side in nodes/policy_setup.py (limits: nodes/policy_limits.py, also the
activation rule). A control timer (control_rate_hz) runs the stale-input watchdog (hold within two control
periods), the streaming output and the ghost. Services (nodes/policy_services.py): ~/pause, ~/resume
(std_srvs/Trigger), ~/estop (std_srvs/SetBool: true engages and latches, false releases into pause), ~/ask
(a question about the scene; with ~/subtask the language side: nodes/policy_language.py).
/diagnostics (nodes/policy_diagnostics.py) and ~/status (DiagnosticStatus with the fields of
msg/PolicyStatus.msg, nodes/policy_status.py) at diagnostics_rate_hz. Process: nodes/policy_main.py.
"""

# size: the lifecycle node wiring pipeline, outputs, diagnostics and services to ROS; what is left to split
#   (instruction gate, configure's entity creation) is open in issue 17 item 3

from __future__ import annotations

import gc
import sys
import time
import traceback
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.srv import AddDiagnostics
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from wallx_ros.core.clock_rate import ClockRate
from wallx_ros.core.errors import CoreError
from wallx_ros.core.latency import LatencyTracker
from wallx_ros.core.limit_sources import ResolvedLimits
from wallx_ros.core.policy_control import ChunkOutcome, ControlMode, PolicyControl, TrajectoryCommand
from wallx_ros.core.transport_timing import TransportTimingConfig
from wallx_ros.nodes import policy_services as services
from wallx_ros.nodes.command_stream import CommandStreamer
from wallx_ros.nodes.observation_inputs import ObservationInputs
from wallx_ros.nodes.parameters import declare
from wallx_ros.nodes.policy_diagnostics import WaitingLog, diagnostic_array
from wallx_ros.nodes.policy_language import PolicyLanguage
from wallx_ros.nodes.policy_limits import activation_verdict
from wallx_ros.nodes.policy_main import run_policy_node
from wallx_ros.nodes.policy_outputs import PolicyOutputs
from wallx_ros.nodes.policy_parameters import DIAGNOSTICS_RATE_RANGE, TABLE, PolicyNodeConfig, read_config
from wallx_ros.nodes.policy_pipeline import PolicyPipeline
from wallx_ros.nodes.policy_requests import STAGES
from wallx_ros.nodes.policy_setup import build_setup
from wallx_ros.nodes.policy_status import SWITCH_FIGURES, PolicyStatusPublisher, StatusFields
from wallx_ros.nodes.transport_diagnostics import TransportView
from wallx_ros.policy import PolicyBackend, load_backend
from wallx_ros.policy.backend import TextBackend
from wallx_ros.policy.errors import PolicyError
from wallx_ros.policy.text_jobs import TextScheduler

__all__ = ["PolicyNode", "main"]

_NS = 1_000_000_000
_CLOCK_JUMP_NS = 10_000_000  # the control clock going back more than this is a jump (simulation reset)


class PolicyNode(LifecycleNode):
    """Runs one WALL-OSS policy on the robot's cameras and joint states."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        declare(self, TABLE)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.config: PolicyNodeConfig | None = None
        self.backend: PolicyBackend | None = None
        self.control: PolicyControl | None = None
        self.inputs: ObservationInputs | None = None
        self.configure_error = ""
        self.activate_error = ""
        self._limits: ResolvedLimits | None = None
        self.latency = LatencyTracker(STAGES)
        self.smoothness = LatencyTracker(SWITCH_FIGURES)  # rolling windows of the switch figures (not ms)
        self.status = StatusFields()
        self._streamer: CommandStreamer | None = None
        self._outputs: PolicyOutputs | None = None
        self._instruction = str(self.get_parameter("instruction").value)
        self._transport: TransportView | None = None
        self._last_ghost = 0.0
        self._last_tick_ns = 0
        self._waiting = WaitingLog()
        self._pipeline: PolicyPipeline | None = None
        self._language: PolicyLanguage | None = None
        self._clock_rate = ClockRate()  # the model's thread only (the language side's gaps on simulated time)
        self._entities: list[Any] = []
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
        # a question blocks its thread until answered: a group of its own
        self.create_service(AddDiagnostics, "~/ask", self._on_ask, callback_group=MutuallyExclusiveCallbackGroup())

    # -- lifecycle ----------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (PolicyError, CoreError) as err:  # ParameterError is a CoreError
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
        setup = build_setup(cfg, backend, self.get_logger().info, self.get_logger().warning)
        self.control, self._limits = setup.control, setup.limits
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
        topics = dict(zip(cfg.cameras, cfg.camera_topics, strict=True)) if cfg.camera_topics else None
        self.inputs = ObservationInputs(
            self, setup.cameras, setup.state_names, transport=cfg.camera_transport, image_grid=setup.image_grid,
            sync_tolerance_s=cfg.sync_tolerance_s, max_age_s=cfg.max_age_s, camera_topics=topics,
            callback_group=self._input_group, on_message=self._on_input_message, use_cv_bridge=cfg.use_cv_bridge,
            transport_timing=TransportTimingConfig(cfg.clock_tolerance_s, cfg.max_transport_delay_s))
        self._transport = TransportView(self.inputs.transport_report, self._now_ns, self._sim_time)
        self._outputs = PolicyOutputs(self, cfg, setup.urdf, self._control_group)
        self._result_ready = self.create_guard_condition(self._on_results, callback_group=self._control_group)
        self._entities.append(self._result_ready)
        self._entities.append(self.create_timer(1.0 / setup.control_rate_hz, self._on_control_tick,
                                                callback_group=self._control_group))
        text = TextScheduler(lambda: self._text_generator(backend, cfg), self._text_window_s) \
            if isinstance(backend, TextBackend) else None
        self._pipeline = PolicyPipeline(self.control, backend, self.inputs.cameras, self.status, self.latency,
                                        self.smoothness, self._result_ready.trigger, text)
        if text is not None:
            self._language = PolicyLanguage(self, cfg.language.resolved(backend.device), text,
                                            lambda: self._instruction, self._is_active, self._pipeline.worker.wake)
        self._pipeline.start()
        if self._outputs.streaming and not self._sim_time():
            self._streamer = CommandStreamer(self._stream_tick, 1.0 / setup.control_rate_hz, cfg.stream_priority,
                                             on_warning=lambda m: self.get_logger().warning(m))
            self._streamer.start()
        self.get_logger().info(
            f"configured: cameras {list(setup.cameras)} ({cfg.camera_transport}, images via "
            f"{self.inputs.image_path}),"
            f" joints {list(setup.state_names)} -> {cfg.output_mode} on {self._outputs.trajectory_topic}"
            f", {backend.fps:g} fps, horizon {cfg.execution.execution_horizon}, control {setup.control_rate_hz:g} Hz"
            f", engine {backend.engine}, " + ("rtc" if setup.rtc_enabled else f"blend {cfg.execution.blend}"))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.control is None or self.config is None or self._limits is None:
            return TransitionCallbackReturn.FAILURE
        verdict = activation_verdict(self._limits, self.config.allow_unlimited_motion)
        if verdict.refusal:
            self.activate_error = verdict.refusal
            self.get_logger().error(self.activate_error)
            return TransitionCallbackReturn.FAILURE
        if verdict.warning:
            self.get_logger().warning(verdict.warning)
        self.activate_error = ""
        self.control.activate(self._now_ns())
        if self._pipeline is not None:
            self._pipeline.restart()
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

    def _is_active(self) -> bool:
        control = self.control
        return control is not None and control.mode is not ControlMode.INACTIVE

    def _text_window_s(self) -> float:
        """The model's thread: wall seconds until the next observation is due (on simulated time converted at the
        measured clock rate: a slow or paused simulation leaves more wall time)."""
        pipeline = self._pipeline
        if pipeline is None:
            return 0.0
        now = self._now_ns()
        window = pipeline.text_window_s(now)
        if not self._sim_time():
            return window
        self._clock_rate.update(time.monotonic(), now)
        return self._clock_rate.wall_s(window)

    @staticmethod
    def _text_generator(backend: TextBackend, cfg: PolicyNodeConfig) -> Any:
        generator = backend.text_generator()  # built on the model's thread, on first use
        generator.max_question_tokens = cfg.language.max_question_tokens
        return generator

    def _teardown(self) -> None:
        if self._streamer is not None:
            self._streamer.stop()
            self._streamer = None
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
        if self._language is not None:
            self._language.destroy()
            self._language = None
        if self.inputs is not None:
            self.inputs.destroy()
            self.inputs = None
            self._transport = None
        if self._outputs is not None:
            self._outputs.destroy()
            self._outputs = None
        for entity in self._entities:
            if hasattr(entity, "cancel"):
                entity.cancel()
                self.destroy_timer(entity)
            else:
                self.destroy_guard_condition(entity)
        self._entities.clear()
        self.control = None
        self.backend = None
        self.config = None
        self._limits = None

    # -- parameters / instruction -------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "instruction":
                reason = self._instruction_problem(str(p.value))
                self.status.instruction_problem = reason
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
                self._instruction = str(p.value)
        return SetParametersResult(successful=True)

    def _instruction_problem(self, text: str) -> str:
        limit = int(self.get_parameter("max_instruction_length").value)
        if len(text) > limit:
            return f"instruction of {len(text)} characters refused: max_instruction_length is {limit}"
        backend = self.backend  # the model's own rules (control tokens, prompt room) once it is loaded
        return backend.instruction_problem(text) if backend is not None else ""

    def _on_instruction(self, msg: String) -> None:
        reason = self._instruction_problem(msg.data)
        self.status.instruction_problem = reason  # stays until a good instruction arrives (last_problem is per chunk)
        if reason:
            self.status.last_problem = reason
            self.get_logger().error(f"~/instruction: {reason}; keeping {self._instruction[:60]!r}",
                                    throttle_duration_sec=2.0)
            self._status.publish(self._status_fields())
            return
        if msg.data != self._instruction:
            self.get_logger().info(f"instruction: {msg.data[:200]!r}")
        self._instruction = msg.data

    # -- inference ----------------------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _on_input_message(self, stream: str) -> None:
        """Any input thread, right after a message was stored: submit at once if the model is free."""
        pipeline = self._pipeline
        if pipeline is not None and not pipeline.busy:
            self._maybe_submit()

    def _maybe_submit(self) -> None:
        """Hand the latest synced observation to the worker if one is due (nodes.policy_pipeline)."""
        pipeline, inputs = self._pipeline, self.inputs
        if pipeline is None or inputs is None:
            return
        max_age_s = self.config.max_age_s if self.config is not None else None
        pipeline.maybe_submit(self._now_ns, inputs.latest_synced, self._one_way_delay_s, self._clock_problems,
                              self._instruction, self._sim_time(), max_age_s,
                              lambda m: self.get_logger().warning(m, throttle_duration_sec=2.0))

    def _on_results(self) -> None:
        pipeline = self._pipeline
        if pipeline is None:
            return
        for result in pipeline.take_results():
            outcome = pipeline.handle(result, self._now_ns, self._one_way_delay_s(), self._sim_time(),
                                      self._send_command, self._reject)
            if outcome is not None:
                self._published(outcome)
        self._maybe_submit()

    def _published(self, outcome: ChunkOutcome) -> None:
        """A chunk went out: limit adjustments, the boundary jump, the predicted path and the status follow."""
        if outcome.adjustments:
            self.get_logger().warning("limits: " + "; ".join(outcome.adjustments), throttle_duration_sec=2.0)
        if self._outputs is not None:
            if outcome.raw_jump is not None:
                self._outputs.boundary_jump(outcome.raw_jump)
            if outcome.plan is not None:
                self._outputs.predicted_path(outcome.plan)
        self._status.publish(self._status_fields())

    def _reject(self, reason: str) -> None:
        self.status.chunks_rejected += 1
        self.status.last_problem = reason
        self.get_logger().error(f"chunk not published: {reason}", throttle_duration_sec=1.0)

    # -- outputs ------------------------------------------------------------------------------------------
    def _send_command(self, command: TrajectoryCommand) -> bool:
        """Publish a chunk or hold through the configured output; every command passes the JTC rules first.

        PolicyControl.check on the command is the check of the message it becomes: the message is built from
        the same arrays by an exact conversion (int64 ns -> sec/nanosec, float64 -> float64, no accelerations
        or efforts), so its names, points, stamp and times are the command's."""
        control, outputs = self.control, self._outputs
        if control is None or outputs is None:
            return False
        problems = control.check(command, self._now_ns())
        if problems:
            self._reject("outgoing message failed the controller rules: " + "; ".join(problems))
            return False
        outputs.send(command)
        return True  # streaming modes sample the committed plan in the control tick

    def _send_hold(self, command: TrajectoryCommand | None) -> None:
        if command is None or self.config is None:
            return
        if self._send_command(command):
            self.get_logger().warning(f"hold sent ({self.control.reason if self.control else ''})")
        self._status.publish(self._status_fields())

    def _one_way_delay_s(self) -> float:
        return self._transport.one_way_delay_s() if self._transport is not None else 0.0

    def _clock_problems(self) -> tuple[str, ...]:
        return self._transport.clock_problems() if self._transport is not None else ()

    def _on_control_tick(self) -> None:
        control, inputs, cfg, outputs = self.control, self.inputs, self.config, self._outputs
        if control is None or inputs is None or cfg is None or outputs is None:
            return
        now = self._now_ns()
        if now < self._last_tick_ns - _CLOCK_JUMP_NS:
            self._on_clock_jump(now, self._last_tick_ns)
        self._last_tick_ns = now
        synced = inputs.latest_synced(now)
        self._send_hold(control.watchdog(now, synced.stream_problems + self._clock_problems()))
        if outputs.streaming and self._streamer is None:  # simulated time: stream from this timer
            self._stream_tick(0)
        if cfg.ghost_rate_hz > 0 and control.executor.plan is not None \
                and time.monotonic() - self._last_ghost >= 1.0 / cfg.ghost_rate_hz:
            self._last_ghost = time.monotonic()
            outputs.ghost(control.names, control.executor.plan.sample(now + round(cfg.ghost_lookahead_s * _NS)), now)
        self._maybe_submit()

    def _explain_waiting(self) -> None:
        """Active but not publishing: say why, every waiting_log_period_s (nodes.policy_diagnostics.WaitingLog).
        Called from the diagnostics timer (steady clock): it also speaks when simulated time stands still."""
        control, inputs, cfg = self.control, self.inputs, self.config
        if control is None or inputs is None or cfg is None:
            return
        now = self._now_ns()
        line = self._waiting.line(control, inputs.latest_synced(now), lambda: inputs.stream_views(now), now,
                                  self._sim_time(), cfg.max_age_s, cfg.clock_tolerance_s, cfg.waiting_log_period_s,
                                  self._clock_problems)
        if line:
            self.get_logger().info(line)

    def _on_clock_jump(self, now: int, before: int) -> None:
        """Simulation reset / bag replay: nothing of the old timeline (samples, in-flight chunks) may be used."""
        assert self.control is not None and self.inputs is not None
        self.inputs.clear()
        if self._pipeline is not None:
            self._pipeline.new_timeline()  # chunks of observations taken before the jump are dropped on arrival
        command = self.control.clock_jumped(now, before)
        self.status.last_problem = self.control.reason if self.control.reason.startswith("clock") else \
            f"clock jumped back {(before - now) / _NS:.3f} s"
        self.get_logger().warning(self.status.last_problem)
        self._send_hold(command)

    def _stream_tick(self, deadline_ns: int) -> None:
        """One streamed command (control timer under sim time, else the CommandStreamer thread)."""
        control, outputs = self.control, self._outputs
        if control is None or outputs is None or control.mode is ControlMode.INACTIVE:
            return
        now = self._now_ns()
        sample = control.stream_sample(now)
        if sample is not None and not outputs.stream(control.names, sample[0], sample[1], now):
            self._reject("stream sample is not finite: nothing published")

    # -- services -----------------------------------------------------------------------------------------
    def _on_pause(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self._reply(services.pause(self.control, self._now_ns()), response)

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        reply = services.resume(self.control, self._now_ns())
        if reply.success and self._pipeline is not None:
            self._pipeline.restart()
        return self._reply(reply, response)

    def _on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        return self._reply(services.estop(self.control, bool(request.data), self._now_ns()), response)

    def _on_ask(self, request: AddDiagnostics.Request, response: AddDiagnostics.Response) -> AddDiagnostics.Response:
        """~/ask: the question in ``load_namespace``; ``message`` is the answer (success) or why there is none."""
        language = self._language
        if language is None:
            response.success, response.message = False, "the policy node is not configured (no model loaded)"
        else:
            response.success, response.message = language.ask(str(request.load_namespace))
        return response

    def _reply(self, reply: services.ServiceReply, response: Any) -> Any:
        self._send_hold(reply.hold)
        if reply.log:
            self.get_logger().warning(reply.message)
        response.success, response.message = reply.success, reply.message
        return response

    # -- diagnostics --------------------------------------------------------------------------------------
    def _status_fields(self) -> StatusFields:
        now = self._now_ns()
        stats = self.inputs.stats(now) if self.inputs is not None else None
        return self.status.refresh(now, self.control, self.configure_error, self.activate_error,
                                   self._pipeline.worker.dropped if self._pipeline is not None else None, stats)

    def _publish_diagnostics(self) -> None:
        self._explain_waiting()
        st = self._status_fields()
        self._status.publish(st)
        inputs = None
        if self.inputs is not None:
            inputs = (self.inputs.stats(st.stamp_ns), self.inputs.topics,
                      self.config.max_age_s if self.config else None)
        backend = self.backend
        name = self.get_fully_qualified_name()
        array = diagnostic_array(name, st, self._status, inputs,
                                 self._transport.report() if self._transport is not None else None, self.latency,
                                 self.smoothness, backend.device if backend is not None else "cpu")
        if self._language is not None:
            array.status.append(self._language.diagnostic(f"{name}: language"))
        self._diag_pub.publish(array)

    # -- start-up -----------------------------------------------------------------------------------------
    def autostart(self) -> bool:
        """Configure and activate (parameter autostart). False if either failed."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def teardown(self) -> None:
        """Stop the worker and streamer threads, destroy what configure made (also on exit)."""
        self._teardown()

    def hold_on_exit(self) -> None:
        """Best effort on SIGINT: leave the robot holding rather than finishing the last chunk."""
        if self.control is not None and self.control.mode is not ControlMode.INACTIVE:
            try:
                self._send_hold(self.control.deactivate(self._now_ns()))
            except Exception as err:  # the context may already be shut down
                self.get_logger().warning(f"could not send the exit hold: {err}")


def main(args: list[str] | None = None) -> int:
    """Entry point (console script ``wallx-policy-node``): nodes.policy_main runs this node class."""
    return run_policy_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
