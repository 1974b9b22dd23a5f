"""Settings of the embedded simulation, validated once: scene, rates, cameras, pacing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from wallx_ros.sim.errors import SimConfigError

__all__ = ["DEFAULT_CAMERA_MAP", "SCENES", "SimCamera", "SimConfig", "parse_camera_map"]

# gym-aloha scene name -> MJCF file in gym_aloha/assets
SCENES: dict[str, str] = {
    "aloha_insertion": "bimanual_viperx_insertion.xml",
    "aloha_transfer_cube": "bimanual_viperx_transfer_cube.xml",
}

# WALL-OSS camera key -> camera of the gym-aloha MJCF. gym-aloha's own observation is "top" (the ALOHA
# datasets' observation.images.top); the wrist cameras are mounted on the grippers in the MJCF.
DEFAULT_CAMERA_MAP: tuple[str, ...] = ("face_view=top", "left_wrist_view=left_wrist", "right_wrist_view=right_wrist")


@dataclass(frozen=True)
class SimCamera:
    """One published camera: ``key`` names the topic (``<key>/image_raw``), ``mjcf_camera`` the scene camera."""

    key: str
    mjcf_camera: str


def parse_camera_map(entries: tuple[str, ...] | list[str]) -> tuple[SimCamera, ...]:
    """``("face_view=top", ...)`` -> SimCameras; raises SimConfigError on a malformed entry."""
    specs = []
    for entry in entries:
        key, sep, cam = str(entry).partition("=")
        key, cam = key.strip(), cam.strip()
        if not sep or not key or not cam:
            raise SimConfigError(f"camera entry {entry!r} must look like 'face_view=top' (topic key = MJCF camera)")
        specs.append(SimCamera(key=key, mjcf_camera=cam))
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise SimConfigError(f"camera keys repeat: {keys}")
    return tuple(specs)


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulation needs, read once.

    control_rate_hz: rate of the trajectory executor (a JTC's update rate); physics substeps fill each period.
    camera_rate_hz: how often (in SIM time) the cameras are rendered; 0 disables rendering.
    real_time_factor: sim seconds per wall second the node aims for (the loop may run slower when
        rendering or the CPU cannot keep up: sim time, published on /clock, is what every node follows).
    seed: >= 0 randomises the object poses as gym-aloha does; -1 keeps the scene's keyframe.
    max_joint_velocity / max_gripper_velocity: command rate limits (rad/s; normalised gripper units/s),
        enforced like ros2_control's joint limits.
    """

    scene: str = "aloha_insertion"
    control_rate_hz: float = 50.0
    camera_rate_hz: float = 10.0
    image_width: int = 320
    image_height: int = 240
    cameras: tuple[SimCamera, ...] = field(default_factory=lambda: parse_camera_map(DEFAULT_CAMERA_MAP))
    render_shadows: bool = False
    real_time_factor: float = 1.0
    seed: int = -1
    max_joint_velocity: float = 3.0
    max_gripper_velocity: float = 2.0

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise SimConfigError(f"unknown scene {self.scene!r}: choose one of {sorted(SCENES)}")
        if not (math.isfinite(self.control_rate_hz) and 1.0 <= self.control_rate_hz <= 2000.0):
            raise SimConfigError(f"control_rate_hz must be in [1, 2000], got {self.control_rate_hz}")
        if not (math.isfinite(self.camera_rate_hz) and 0.0 <= self.camera_rate_hz <= self.control_rate_hz):
            raise SimConfigError(
                f"camera_rate_hz must be in [0, control_rate_hz={self.control_rate_hz}], got {self.camera_rate_hz}"
            )
        if not (16 <= self.image_width <= 4096 and 16 <= self.image_height <= 4096):
            raise SimConfigError(f"image size {self.image_width}x{self.image_height} must be within 16..4096 px")
        if not (math.isfinite(self.real_time_factor) and 0.0 < self.real_time_factor <= 100.0):
            raise SimConfigError(f"real_time_factor must be in (0, 100], got {self.real_time_factor}")
        for name in ("max_joint_velocity", "max_gripper_velocity"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SimConfigError(f"{name} must be > 0, got {value}")
        keys = [c.key for c in self.cameras]
        if len(set(keys)) != len(keys):
            raise SimConfigError(f"camera keys repeat: {keys}")

    @property
    def control_period_ns(self) -> int:
        return round(1e9 / self.control_rate_hz)
