"""Every parameter of the policy node: name, type, default, range, description - declared once, read once.

``TABLE`` is the single list (the package's parameter-table pattern, ``core.parameter_table``);
``config/policy.yaml`` documents each entry (a test checks that the two agree, and that the launch file only
sets declared parameters). Values are read into the frozen ``PolicyNodeConfig`` at configure time; only
``instruction`` may change at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.node import Node

from wallx_ros.core.chunk_execution import BLEND_MODES, ExecutionConfig
from wallx_ros.core.joint_trajectory_rules import JtcOptions
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.core.realtime_chunking import RTC_SCHEDULES, RtcConfig
from wallx_ros.core.safety import VIOLATION_POLICIES
from wallx_ros.nodes.parameters import read
from wallx_ros.policy import BackendConfig
from wallx_ros.policy.config import ENGINES, FLOW_ATTENTION, PREDICTION_MODES
from wallx_ros.policy.errors import PolicyError
from wallx_ros.policy.text_limits import MAX_NEW_TOKENS_LIMIT

__all__ = ["DIAGNOSTICS_RATE_RANGE", "OUTPUT_MODES", "RUNTIME_PARAMETERS", "TABLE", "LanguageConfig",
           "PolicyNodeConfig", "read_config"]

OUTPUT_MODES = ("trajectory", "action", "joint_state", "array")
DIAGNOSTICS_RATE_RANGE = (0.01, 1000.0)
RUNTIME_PARAMETERS = ("instruction",)

_B, _I, _D, _S = ParamType.BOOL, ParamType.INTEGER, ParamType.DOUBLE, ParamType.STRING
_SA, _DA = ParamType.STRING_ARRAY, ParamType.DOUBLE_ARRAY

TABLE = ParameterTable("wallx_policy", [
    # model
    Param("checkpoint_dir", _S, "", "LeRobot wall_x policy folder to load (required)"),
    Param("backbone_dir", _S, "", "local WALL-OSS backbone folder when the checkpoint has none"),
    Param("action_tokenizer_dir", _S, "", "fast mode: action tokenizer folder"),
    Param("device", _S, "cpu", "cpu, cuda, cuda:N or auto"),
    Param("dtype", _S, "bfloat16", "model dtype (WallX runs mixed bfloat16/float32)"),
    Param("mode", _S, "", "prediction mode: diffusion or fast; empty = the checkpoint's",
          choices=("", *PREDICTION_MODES)),
    Param("allow_random_weights", _B, False, "accept random-weight test checkpoints (never on a robot)"),
    Param("trust_remote_code", _B, False, "allow loading an action tokenizer that executes code"),
    Param("seed", _I, -1, "re-seed torch before each prediction (>= 0), -1 = free-running noise", low=-1),
    Param("num_threads", _I, 0, "torch CPU threads, 0 = torch default", low=0, high=1024),
    Param("engine", _S, "auto", "flow-mode engine: auto, stock (LeRobot's predict_action_chunk) or fast_flow",
          choices=ENGINES),
    Param("flow_attention", _S, "auto", "fast_flow attention: auto (sdpa on CUDA, eager on CPU), eager or sdpa",
          choices=FLOW_ATTENTION),
    Param("cuda_graphs", _B, True, "on CUDA: replay fast_flow's flow / fast_decode's decode step as CUDA graphs"),
    Param("flow_compile", _B, False, "fast_flow: torch.compile a decoder layer + vision block (fused kernels)"),
    Param("warmup", _B, True, "run one inference at configure so the first real one is not slow"),
    Param("autostart", _B, True, "configure and activate at start-up (false: wait for a lifecycle manager)"),
    # inputs
    Param("instruction", _S, "", "task instruction; ~/instruction (std_msgs/String) replaces it", read_only=False),
    Param("max_instruction_length", _I, 1000, "longer instructions are refused (characters)", low=1),
    Param("cameras", _SA, None, "model camera keys to use; unset = the checkpoint's cameras"),
    Param("camera_topics", _SA, None, "topic per camera (same order); unset = <camera>/image_raw[/compressed]"),
    Param("camera_transport", _S, "raw", "raw: sensor_msgs/Image; compressed: sensor_msgs/CompressedImage",
          choices=("raw", "compressed")),
    Param("use_cv_bridge", _S, "auto", "convert images with ROS 2 cv_bridge when usable",
          choices=("auto", "true", "false")),
    Param("state_joint_names", _SA, None, "robot joint of each model state dim; unset = checkpoint mapping"),
    Param("action_joint_names", _SA, None, "robot joint of each used action dim; unset = checkpoint mapping"),
    Param("sync_tolerance_s", _D, 0.05, "max stamp spread between the streams of one observation (s)",
          low=1e-6, high=60.0),
    Param("max_age_s", _D, 0.5, "a stream older than this blocks inference and triggers a hold (s)",
          low=1e-3, high=60.0),
    Param("clock_tolerance_s", _D, 0.005, "stamps up to this far in the future are accepted; beyond: the robot's "
          "clock is ahead of this host's, the node holds (s)", low=0.0, high=60.0),
    Param("max_transport_delay_s", _D, 0.5, "every stream older than this on arrival: robot clock behind or link "
          "unusable, the node holds (s)", low=1e-3, high=3600.0),
    # action mapping
    Param("action_type", _S, "absolute", "absolute | delta (target = observed position + action)",
          choices=("absolute", "delta")),
    Param("gripper_joints", _SA, None, "joints scaled as robot = gripper_offset + gripper_scale * model"),
    Param("gripper_scale", _D, 1.0, "gripper scale (model units -> robot units)"),
    Param("gripper_offset", _D, 0.0, "gripper offset (robot units)"),
    # chunk execution
    Param("execution_horizon", _I, 16, "rows of a chunk executed before the next chunk takes over (1..chunk)", low=1),
    Param("blend", _S, "crossfade", "blending of overlapping chunks (c1: position and velocity continuous, within "
          "max_velocity / max_acceleration)", choices=BLEND_MODES),
    Param("blend_steps", _I, 8, "blend width in rows (c1: the shortest; longer when the limits need it)", low=0),
    Param("rtc", _B, False, "real-time chunking (flow mode): the model continues the running plan; blend applies "
          "where it cannot run"),
    Param("rtc_max_guidance", _D, 10.0, "RTC: cap of the guidance gain (beta)", low=0.0, high=1e6),
    Param("rtc_schedule", _S, "exp", "RTC: weights of the overlap after the frozen rows", choices=RTC_SCHEDULES),
    Param("rtc_delay_percentile", _D, 99.0, "RTC: inference delay d = this percentile of the measured delays",
          low=0.0, high=100.0),
    Param("latency_compensation", _B, True, "stamp = observation time + latency_offset_s (controller skips "
          "past points); false = stamp 0, chunk starts when received"),
    Param("latency_offset_s", _D, 0.0, "constant added to the observation stamp (e.g. camera exposure delay)",
          low=-10.0, high=10.0),
    Param("min_lead_s", _D, 0.04, "drop a chunk whose last point is less than this far in the future (s)",
          low=0.0, high=60.0),
    Param("control_rate_hz", _D, 0.0, "watchdog / streaming rate; 0 = the policy's fps", low=0.0, high=10_000.0),
    Param("stream_priority", _I, 0, "streaming thread SCHED_FIFO priority 1-99 (needs CAP_SYS_NICE); 0 = normal",
          low=0, high=99),
    # safety
    Param("position_lower", _DA, None, "lower position limit: one value or one per action joint"),
    Param("position_upper", _DA, None, "upper position limit: one value or one per action joint"),
    Param("max_velocity", _DA, None, "max joint speed (units/s): one value or one per action joint", low=0.0),
    Param("max_acceleration", _DA, None, "max joint acceleration (units/s^2): one value or one per action joint; "
          "unset = the URDF's where it has one, else none", low=0.0),
    Param("urdf_path", _S, "", "URDF file: joint limits (parameters override) and RViz markers"),
    Param("robot_description", _S, "", "URDF as a string (used when urdf_path is empty)"),
    Param("stats_limit_margin", _D, 0.1, "limits derived from the checkpoint's action statistics: the trained "
          "range widened by this fraction of it on each side", low=0.0, high=10.0),
    Param("allow_unlimited_motion", _B, False, "activate even when a joint has no position range or max velocity "
          "(warned at every activation; never on a robot)"),
    Param("limit_violation", _S, "clamp", "clamp | reject: what to do with a chunk outside the limits",
          choices=VIOLATION_POLICIES),
    Param("controller_joints", _SA, None, "joints of the receiving controller; unset = action joints"),
    Param("jtc_allow_partial_joints_goal", _B, False, "the controller's allow_partial_joints_goal"),
    Param("jtc_allow_nonzero_velocity_at_trajectory_end", _B, False,
          "the controller's allow_nonzero_velocity_at_trajectory_end"),
    # outputs
    Param("output_mode", _S, "trajectory", "where commands go", choices=OUTPUT_MODES),
    Param("dry_run", _B, False, "publish only to ~/dry_run/joint_trajectory, never to the robot"),
    Param("action_name", _S, "follow_joint_trajectory", "output_mode action: FollowJointTrajectory server"),
    Param("ghost_lookahead_s", _D, 0.3, "the ghost JointState shows the plan this far ahead (s)", low=0.0, high=60.0),
    Param("ghost_rate_hz", _D, 10.0, "rate of the ghost JointState (0 = off)", low=0.0, high=1000.0),
    Param("marker_links", _SA, None, "links whose predicted paths are drawn; unset = URDF leaf links"),
    Param("diagnostics_rate_hz", _D, 1.0, "rate of /diagnostics and ~/status", low=DIAGNOSTICS_RATE_RANGE[0],
          high=DIAGNOSTICS_RATE_RANGE[1]),
    Param("waiting_log_period_s", _D, 5.0, "while active but not publishing: say why every this many seconds "
          "(0 = never)", low=0.0, high=3600.0),
    Param("gil_switch_interval_s", _D, 0.0005, "Python thread switch interval: short keeps the control loop "
          "responsive while the model runs (s)", low=1e-5, high=0.1),
    # language side (the model's words between action chunks)
    Param("subtask_rate_hz", _D, -1.0, "~/subtask rate: -1 = auto (0.5 Hz on CUDA, off on CPU), 0 = off",
          low=-1.0, high=100.0),
    Param("subtask_max_tokens", _I, 32, "longest subtask text (tokens)", low=1, high=MAX_NEW_TOKENS_LIMIT),
    Param("ask_timeout_s", _D, 30.0, "~/ask: the answer so far is returned after this long (s)", low=0.1,
          high=3600.0),
    Param("ask_max_tokens", _I, 64, "~/ask: longest answer (tokens)", low=1, high=MAX_NEW_TOKENS_LIMIT),
    Param("max_question_tokens", _I, 256, "~/ask: longer questions are refused (tokens)", low=1, high=4096),
    Param("text_marker_frame", _S, "world", "frame of the ~/subtask_marker text (RViz)"),
], summary="Runs the WALL-OSS policy (LeRobot wall_x) on the robot's cameras and joint states: lifecycle node, "
           "safe JointTrajectory chunks out.")


@dataclass(frozen=True)
class LanguageConfig:
    """The language side: ``~/subtask`` (``subtask_rate_hz`` resolved: 0 = off), ``~/ask``, the RViz text."""

    subtask_rate_hz: float
    subtask_max_tokens: int
    ask_timeout_s: float
    ask_max_tokens: int
    max_question_tokens: int
    marker_frame: str

    def resolved(self, device: str) -> LanguageConfig:
        """``subtask_rate_hz`` -1 (auto): 0.5 Hz on CUDA, off on CPU (a CPU answer takes seconds of the model's
        time that action chunks need)."""
        if self.subtask_rate_hz >= 0:
            return self
        rate = 0.5 if str(device).startswith("cuda") else 0.0
        return LanguageConfig(rate, self.subtask_max_tokens, self.ask_timeout_s, self.ask_max_tokens,
                              self.max_question_tokens, self.marker_frame)


@dataclass(frozen=True)
class PolicyNodeConfig:
    """All node settings, read once at configure."""

    backend: BackendConfig
    warmup: bool
    instruction: str
    max_instruction_length: int
    cameras: tuple[str, ...]
    camera_topics: tuple[str, ...]
    camera_transport: str
    use_cv_bridge: str
    state_joint_names: tuple[str, ...]
    action_joint_names: tuple[str, ...]
    sync_tolerance_s: float
    max_age_s: float
    clock_tolerance_s: float
    max_transport_delay_s: float
    action_type: str
    gripper_joints: tuple[str, ...]
    gripper_scale: float
    gripper_offset: float
    execution: ExecutionConfig
    rtc: RtcConfig
    control_rate_hz: float
    stream_priority: int
    position_lower: tuple[float, ...]
    position_upper: tuple[float, ...]
    max_velocity: tuple[float, ...]
    max_acceleration: tuple[float, ...]
    stats_limit_margin: float
    allow_unlimited_motion: bool
    urdf_path: str
    robot_description: str
    limit_violation: str
    controller_joints: tuple[str, ...]
    jtc: JtcOptions
    output_mode: str
    dry_run: bool
    action_name: str
    ghost_lookahead_s: float
    ghost_rate_hz: float
    marker_links: tuple[str, ...]
    diagnostics_rate_hz: float
    waiting_log_period_s: float
    gil_switch_interval_s: float
    language: LanguageConfig

    def __post_init__(self) -> None:
        if self.camera_transport not in ("raw", "compressed"):
            raise PolicyError(f"camera_transport must be raw or compressed, got {self.camera_transport!r}")
        if self.camera_topics and len(self.camera_topics) != len(self.cameras):
            raise PolicyError(f"camera_topics has {len(self.camera_topics)} entries for cameras {list(self.cameras)}: "
                              "give one topic per camera, in the same order (and set cameras)")
        if self.output_mode not in OUTPUT_MODES:
            raise PolicyError(f"output_mode must be one of {OUTPUT_MODES}, got {self.output_mode!r}")
        if self.limit_violation not in VIOLATION_POLICIES:
            raise PolicyError(f"limit_violation must be one of {VIOLATION_POLICIES}, got {self.limit_violation!r}")
        if self.execution.blend not in BLEND_MODES:
            raise PolicyError(f"blend must be one of {BLEND_MODES}")
        # the watchdog runs at control_rate_hz: a hold comes within two of its periods, so it must be a real rate
        if not (self.control_rate_hz == 0 or 1.0 <= self.control_rate_hz <= 10_000):
            raise PolicyError(f"control_rate_hz must be 0 (the policy's fps) or within [1, 10000] Hz, got "
                              f"{self.control_rate_hz}")
        if not 0 <= self.ghost_rate_hz <= 1000:
            raise PolicyError(f"ghost_rate_hz must be within [0, 1000] Hz (0 = off), got {self.ghost_rate_hz}")
        if not DIAGNOSTICS_RATE_RANGE[0] <= self.diagnostics_rate_hz <= DIAGNOSTICS_RATE_RANGE[1]:
            raise PolicyError(f"diagnostics_rate_hz must be within {list(DIAGNOSTICS_RATE_RANGE)} Hz, got "
                              f"{self.diagnostics_rate_hz}")
        if not 0 <= self.stream_priority <= 99:
            raise PolicyError(f"stream_priority must be within 0..99, got {self.stream_priority}")
        if self.max_instruction_length < 1:
            raise PolicyError(f"max_instruction_length must be >= 1, got {self.max_instruction_length}")
        if not 1e-5 <= self.gil_switch_interval_s <= 0.1:
            raise PolicyError(f"gil_switch_interval_s must be within [1e-5, 0.1], got {self.gil_switch_interval_s}")
        if len(self.instruction) > self.max_instruction_length:
            raise PolicyError(f"instruction is {len(self.instruction)} characters, max_instruction_length is "
                              f"{self.max_instruction_length}")


def read_config(node: Node) -> PolicyNodeConfig:
    """Read the declared parameters into a validated config (raises PolicyError / ParameterError / core errors)."""
    values = read(node, TABLE)

    def get(name: str) -> Any:
        return values[name]

    def strings(name: str) -> tuple[str, ...]:
        return tuple(str(v) for v in (get(name) or ()))

    def floats(name: str) -> tuple[float, ...]:
        return tuple(float(v) for v in (get(name) or ()))

    checkpoint = str(get("checkpoint_dir"))
    if not checkpoint:
        raise PolicyError("parameter checkpoint_dir is required (a LeRobot wall_x policy folder)")
    seed = int(get("seed"))
    backend = BackendConfig(
        checkpoint_dir=Path(checkpoint),
        backbone_dir=Path(str(get("backbone_dir"))) if get("backbone_dir") else None,
        action_tokenizer_dir=Path(str(get("action_tokenizer_dir"))) if get("action_tokenizer_dir") else None,
        device=str(get("device")), dtype=str(get("dtype")), mode=str(get("mode")),
        allow_random_weights=bool(get("allow_random_weights")), trust_remote_code=bool(get("trust_remote_code")),
        seed=seed if seed >= 0 else None, num_threads=int(get("num_threads")),
        engine=str(get("engine")), flow_attention=str(get("flow_attention")), cuda_graphs=bool(get("cuda_graphs")),
        flow_compile=bool(get("flow_compile")), rtc=bool(get("rtc")), rtc_max_guidance=float(get("rtc_max_guidance")),
    )
    rtc = RtcConfig(enabled=bool(get("rtc")), max_guidance=float(get("rtc_max_guidance")),
                    schedule=str(get("rtc_schedule")), delay_percentile=float(get("rtc_delay_percentile")))
    execution = ExecutionConfig(
        execution_horizon=int(get("execution_horizon")), blend=str(get("blend")), blend_steps=int(get("blend_steps")),
        latency_compensation=bool(get("latency_compensation")), latency_offset_s=float(get("latency_offset_s")),
        min_lead_s=float(get("min_lead_s")),
    )
    jtc = JtcOptions(allow_partial_joints_goal=bool(get("jtc_allow_partial_joints_goal")),
                     allow_nonzero_velocity_at_trajectory_end=bool(get("jtc_allow_nonzero_velocity_at_trajectory_end")))
    return PolicyNodeConfig(
        backend=backend, warmup=bool(get("warmup")), instruction=str(get("instruction")),
        max_instruction_length=int(get("max_instruction_length")), cameras=strings("cameras"),
        camera_topics=strings("camera_topics"), camera_transport=str(get("camera_transport")),
        use_cv_bridge=str(get("use_cv_bridge")).lower(), state_joint_names=strings("state_joint_names"),
        action_joint_names=strings("action_joint_names"), sync_tolerance_s=float(get("sync_tolerance_s")),
        max_age_s=float(get("max_age_s")), clock_tolerance_s=float(get("clock_tolerance_s")),
        max_transport_delay_s=float(get("max_transport_delay_s")), action_type=str(get("action_type")),
        gripper_joints=strings("gripper_joints"),
        gripper_scale=float(get("gripper_scale")), gripper_offset=float(get("gripper_offset")), execution=execution,
        rtc=rtc,
        control_rate_hz=float(get("control_rate_hz")), stream_priority=int(get("stream_priority")),
        position_lower=floats("position_lower"),
        position_upper=floats("position_upper"), max_velocity=floats("max_velocity"),
        max_acceleration=floats("max_acceleration"), stats_limit_margin=float(get("stats_limit_margin")),
        allow_unlimited_motion=bool(get("allow_unlimited_motion")), urdf_path=str(get("urdf_path")),
        robot_description=str(get("robot_description")), limit_violation=str(get("limit_violation")),
        controller_joints=strings("controller_joints"), jtc=jtc, output_mode=str(get("output_mode")),
        dry_run=bool(get("dry_run")), action_name=str(get("action_name")),
        ghost_lookahead_s=float(get("ghost_lookahead_s")), ghost_rate_hz=float(get("ghost_rate_hz")),
        marker_links=strings("marker_links"), diagnostics_rate_hz=float(get("diagnostics_rate_hz")),
        waiting_log_period_s=float(get("waiting_log_period_s")),
        gil_switch_interval_s=float(get("gil_switch_interval_s")),
        language=LanguageConfig(
            subtask_rate_hz=float(get("subtask_rate_hz")), subtask_max_tokens=int(get("subtask_max_tokens")),
            ask_timeout_s=float(get("ask_timeout_s")), ask_max_tokens=int(get("ask_max_tokens")),
            max_question_tokens=int(get("max_question_tokens")), marker_frame=str(get("text_marker_frame"))),
    )
