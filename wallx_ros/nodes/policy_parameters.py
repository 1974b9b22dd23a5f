"""Every parameter of the policy node: name, default, type, description - declared once, read once.

``PARAMETERS`` is the single list; ``config/policy.yaml`` documents each entry (a test checks that the
two agree, and that the launch file only sets declared parameters). Values are read into the frozen
``PolicyNodeConfig`` at configure time; only ``instruction`` may change at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from wallx_ros.core.chunk_execution import BLEND_MODES, ExecutionConfig
from wallx_ros.core.joint_trajectory_rules import JtcOptions
from wallx_ros.core.safety import VIOLATION_POLICIES
from wallx_ros.policy import BackendConfig
from wallx_ros.policy.errors import PolicyError

__all__ = ["DIAGNOSTICS_RATE_RANGE", "OUTPUT_MODES", "PARAMETERS", "RUNTIME_PARAMETERS", "ParamSpec",
           "PolicyNodeConfig", "declare_all", "read_config"]

OUTPUT_MODES = ("trajectory", "action", "joint_state", "array")
DIAGNOSTICS_RATE_RANGE = (0.01, 1000.0)
RUNTIME_PARAMETERS = ("instruction",)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any  # a Parameter.Type for arrays without a default (YAML cannot hold empty lists)
    description: str


_STR_ARRAY = Parameter.Type.STRING_ARRAY
_DBL_ARRAY = Parameter.Type.DOUBLE_ARRAY

PARAMETERS: tuple[ParamSpec, ...] = (
    # model
    ParamSpec("checkpoint_dir", "", "LeRobot wall_x policy folder to load (required)"),
    ParamSpec("backbone_dir", "", "local WALL-OSS backbone folder when the checkpoint has none"),
    ParamSpec("action_tokenizer_dir", "", "fast mode: action tokenizer folder"),
    ParamSpec("device", "cpu", "cpu, cuda, cuda:N or auto"),
    ParamSpec("dtype", "bfloat16", "model dtype (WallX runs mixed bfloat16/float32)"),
    ParamSpec("mode", "", "prediction mode: diffusion or fast; empty = the checkpoint's"),
    ParamSpec("allow_random_weights", False, "accept random-weight test checkpoints (never on a robot)"),
    ParamSpec("trust_remote_code", False, "allow loading an action tokenizer that executes code"),
    ParamSpec("seed", -1, "re-seed torch before each prediction (>= 0), -1 = free-running noise"),
    ParamSpec("num_threads", 0, "torch CPU threads, 0 = torch default"),
    ParamSpec("engine", "auto", "flow-mode engine: auto, stock (LeRobot's predict_action_chunk) or fast_flow"),
    ParamSpec("flow_attention", "auto", "fast_flow attention: auto (sdpa on CUDA, eager on CPU), eager or sdpa"),
    ParamSpec("cuda_graphs", True, "on CUDA: replay fast_flow's flow / fast_decode's decode step as CUDA graphs"),
    ParamSpec("flow_compile", False, "fast_flow: torch.compile a decoder layer + vision block (fused kernels)"),
    ParamSpec("warmup", True, "run one inference at configure so the first real one is not slow"),
    ParamSpec("autostart", True, "configure and activate at start-up (false: wait for a lifecycle manager)"),
    # inputs
    ParamSpec("instruction", "", "task instruction; ~/instruction (std_msgs/String) replaces it"),
    ParamSpec("max_instruction_length", 1000, "longer instructions are refused (characters)"),
    ParamSpec("cameras", _STR_ARRAY, "model camera keys to use; unset = the checkpoint's cameras"),
    ParamSpec("camera_topics", _STR_ARRAY, "topic per camera (same order); unset = <camera>/image_raw[/compressed]"),
    ParamSpec("camera_transport", "raw", "raw: sensor_msgs/Image; compressed: sensor_msgs/CompressedImage"),
    ParamSpec("use_cv_bridge", "auto", "auto | true | false: convert images with ROS 2 cv_bridge when usable"),
    ParamSpec("state_joint_names", _STR_ARRAY, "robot joint of each model state dim; unset = checkpoint mapping"),
    ParamSpec("action_joint_names", _STR_ARRAY, "robot joint of each used action dim; unset = checkpoint mapping"),
    ParamSpec("sync_tolerance_s", 0.05, "max stamp spread between the streams of one observation (s)"),
    ParamSpec("max_age_s", 0.5, "a stream older than this blocks inference and triggers a hold (s)"),
    ParamSpec("clock_tolerance_s", 0.005, "stamps up to this far in the future are accepted; beyond: the robot's "
                                          "clock is ahead of this host's, the node holds (s)"),
    ParamSpec("max_transport_delay_s", 0.5, "every stream older than this on arrival: robot clock behind or link "
                                            "unusable, the node holds (s)"),
    # action mapping
    ParamSpec("action_type", "absolute", "absolute | delta (target = observed position + action)"),
    ParamSpec("gripper_joints", _STR_ARRAY, "joints scaled as robot = gripper_offset + gripper_scale * model"),
    ParamSpec("gripper_scale", 1.0, "gripper scale (model units -> robot units)"),
    ParamSpec("gripper_offset", 0.0, "gripper offset (robot units)"),
    # chunk execution
    ParamSpec("execution_horizon", 16, "rows of a chunk executed before the next chunk takes over (1..chunk)"),
    ParamSpec("blend", "crossfade", "none | crossfade: blending of overlapping chunks"),
    ParamSpec("blend_steps", 8, "cross-fade width in rows"),
    ParamSpec("latency_compensation", True, "stamp = observation time + latency_offset_s (controller skips "
                                            "past points); false = stamp 0, chunk starts when received"),
    ParamSpec("latency_offset_s", 0.0, "constant added to the observation stamp (e.g. camera exposure delay)"),
    ParamSpec("min_lead_s", 0.04, "drop a chunk whose last point is less than this far in the future (s)"),
    ParamSpec("control_rate_hz", 0.0, "watchdog / streaming rate; 0 = the policy's fps"),
    ParamSpec("stream_priority", 0, "streaming thread SCHED_FIFO priority 1-99 (needs CAP_SYS_NICE); 0 = normal"),
    # safety
    ParamSpec("position_lower", _DBL_ARRAY, "lower position limit: one value or one per action joint"),
    ParamSpec("position_upper", _DBL_ARRAY, "upper position limit: one value or one per action joint"),
    ParamSpec("max_velocity", _DBL_ARRAY, "max joint speed (units/s): one value or one per action joint"),
    ParamSpec("urdf_path", "", "URDF file: joint limits (parameters override) and RViz markers"),
    ParamSpec("robot_description", "", "URDF as a string (used when urdf_path is empty)"),
    ParamSpec("limit_violation", "clamp", "clamp | reject: what to do with a chunk outside the limits"),
    ParamSpec("controller_joints", _STR_ARRAY, "joints of the receiving controller; unset = action joints"),
    ParamSpec("jtc_allow_partial_joints_goal", False, "the controller's allow_partial_joints_goal"),
    ParamSpec("jtc_allow_nonzero_velocity_at_trajectory_end", False,
              "the controller's allow_nonzero_velocity_at_trajectory_end"),
    # outputs
    ParamSpec("output_mode", "trajectory", "trajectory | action | joint_state | array"),
    ParamSpec("dry_run", False, "publish only to ~/dry_run/joint_trajectory, never to the robot"),
    ParamSpec("action_name", "follow_joint_trajectory", "output_mode action: FollowJointTrajectory server"),
    ParamSpec("ghost_lookahead_s", 0.3, "the ghost JointState shows the plan this far ahead (s)"),
    ParamSpec("ghost_rate_hz", 10.0, "rate of the ghost JointState (0 = off)"),
    ParamSpec("marker_links", _STR_ARRAY, "links whose predicted paths are drawn; unset = URDF leaf links"),
    ParamSpec("diagnostics_rate_hz", 1.0, "rate of /diagnostics and ~/status"),
    ParamSpec("gil_switch_interval_s", 0.0005, "Python thread switch interval: short keeps the control "
                                               "loop responsive while the model runs (s)"),
)


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
    control_rate_hz: float
    stream_priority: int
    position_lower: tuple[float, ...]
    position_upper: tuple[float, ...]
    max_velocity: tuple[float, ...]
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
    gil_switch_interval_s: float

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


def declare_all(node: Node) -> None:
    for spec in PARAMETERS:
        read_only = spec.name not in RUNTIME_PARAMETERS
        node.declare_parameter(spec.name, spec.default,
                               ParameterDescriptor(description=spec.description, read_only=read_only))


def read_config(node: Node) -> PolicyNodeConfig:
    """Read the declared parameters into a validated config (raises PolicyError / core errors)."""

    defaults = {spec.name: spec.default for spec in PARAMETERS}

    def get(name: str) -> Any:
        try:
            value = node.get_parameter(name).value
        except ParameterUninitializedException:  # typed array parameters left unset
            return None
        if value is None and not isinstance(defaults.get(name), Parameter.Type):
            raise PolicyError(f"parameter {name} has no value (an empty list or null in the params file?): "
                              f"give a {type(defaults[name]).__name__}")
        return value

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
        flow_compile=bool(get("flow_compile")),
    )
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
        control_rate_hz=float(get("control_rate_hz")), stream_priority=int(get("stream_priority")),
        position_lower=floats("position_lower"),
        position_upper=floats("position_upper"), max_velocity=floats("max_velocity"), urdf_path=str(get("urdf_path")),
        robot_description=str(get("robot_description")), limit_violation=str(get("limit_violation")),
        controller_joints=strings("controller_joints"), jtc=jtc, output_mode=str(get("output_mode")),
        dry_run=bool(get("dry_run")), action_name=str(get("action_name")),
        ghost_lookahead_s=float(get("ghost_lookahead_s")), ghost_rate_hz=float(get("ghost_rate_hz")),
        marker_links=strings("marker_links"), diagnostics_rate_hz=float(get("diagnostics_rate_hz")),
        gil_switch_interval_s=float(get("gil_switch_interval_s")),
    )
