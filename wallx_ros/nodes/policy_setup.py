"""What the policy node builds at configure from its settings and the loaded checkpoint, ROS-free.

The checks that tie the settings to the checkpoint (cameras, joint counts), the action mapping, the robot
model (URDF), the joint limits (``nodes.policy_limits``), real-time chunking where the backend supports it,
and the control state machine with its safety filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.limit_sources import ResolvedLimits
from wallx_ros.core.policy_control import ControlConfig, PolicyControl
from wallx_ros.core.safety import SafetyFilter
from wallx_ros.core.urdf import UrdfModel
from wallx_ros.nodes.policy_limits import resolve_policy_limits
from wallx_ros.nodes.policy_parameters import PolicyNodeConfig
from wallx_ros.policy.backend import PolicyBackend
from wallx_ros.policy.errors import PolicyError

__all__ = ["PolicySetup", "build_setup"]


@dataclass(frozen=True)
class PolicySetup:
    """One configuration's control side: the state machine, its limits and the input layout."""

    control: PolicyControl
    limits: ResolvedLimits
    urdf: UrdfModel | None
    cameras: tuple[str, ...]
    state_names: tuple[str, ...]
    control_rate_hz: float
    rtc_enabled: bool
    image_grid: dict[str, tuple[int, int]]  # (H, W) per camera: frames are resized to it at arrival


def build_setup(cfg: PolicyNodeConfig, backend: PolicyBackend, info: Callable[[str], None],
                warn: Callable[[str], None]) -> PolicySetup:
    """Raises PolicyError / CoreError where the settings do not fit the checkpoint."""
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
    urdf = None
    if cfg.urdf_path:
        urdf = UrdfModel.from_file(cfg.urdf_path)
    elif cfg.robot_description:
        urdf = UrdfModel.from_string(cfg.robot_description)
    fps = backend.fps
    limits = resolve_policy_limits(cfg, mapping, urdf, fps, warn)
    info(f"joint limits: {limits.summary()}")
    control_rate = cfg.control_rate_hz or fps
    rtc = cfg.rtc
    if rtc.enabled and backend.rtc_problem:
        warn(f"rtc: not available ({backend.rtc_problem}); chunks are joined by blend {cfg.execution.blend!r}")
        rtc = replace(rtc, enabled=False)
    control_cfg = ControlConfig(cfg.execution, cfg.controller_joints, cfg.jtc, hold_time_s=2.0 / control_rate,
                                rtc=rtc, control_period_s=1.0 / control_rate)
    control = PolicyControl(control_cfg, mapping, SafetyFilter(limits.limits, cfg.limit_violation), 1.0 / fps)
    grid = {cam: (int(shape[1]), int(shape[2])) for cam, shape in backend.image_shapes.items()}
    return PolicySetup(control, limits, urdf, tuple(cameras), tuple(state_names), control_rate, rtc.enabled, grid)
