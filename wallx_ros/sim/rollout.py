"""Closed loop without ROS: a chunk policy drives the bare transfer-cube scene, synchronously.

What LeRobot's own ``eval`` does for gym-aloha, on this project's scene and limits: every
``execution_horizon`` policy rows the cameras are rendered and the policy predicts a chunk from the images
and the measured joints (the world waits while it thinks: no latency); the rows are joint commands at the
policy's fps, linearly interpolated to the 50 Hz control period and saturated by the scene's command limits
(as the simulation node does). Quick to run (no DDS, no real-time pacing), so it is where a trained
checkpoint's success rate is estimated; the ROS closed loop (the policy node's blending, latency) is
measured separately.

Reported per seed (:mod:`wallx_ros.sim.episode_metrics`, as the ROS evaluation reports it): gym-aloha's final
and best stage, gripper-to-cube distances, and the command jump at every chunk switch (the largest joint
change between where the old chunk would have gone at that instant and where the new one starts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.camera_renderer import CameraRenderer
from wallx_ros.sim.episode_metrics import EpisodeMetrics, EpisodeResult
from wallx_ros.sim.errors import SimConfigError
from wallx_ros.sim.transfer_cube import CUBE_BODY, transfer_cube_stage

__all__ = ["ChunkPolicy", "RolloutConfig", "run_rollout"]

FloatArray = npt.NDArray[np.float64]
# images (camera key -> RGB) and the measured joints (robot joint order) -> chunk (rows, joints)
ChunkPolicy = Callable[[Mapping[str, npt.NDArray[np.uint8]], FloatArray], FloatArray]


@dataclass(frozen=True)
class RolloutConfig:
    """policy_fps: rows per second of a chunk; execution_horizon: rows run before the next prediction;
    duration_s: episode length (sim time after the cube settled); cameras: camera key -> MJCF camera."""

    policy_fps: float = 10.0
    execution_horizon: int = 16
    duration_s: float = 16.0
    control_period_s: float = 0.02
    settle_substeps: int = 100
    cameras: Mapping[str, str] = field(default_factory=lambda: {
        "face_view": "top", "left_wrist_view": "left_wrist", "right_wrist_view": "right_wrist"})
    image_hw: tuple[int, int] = (240, 320)

    def __post_init__(self) -> None:
        if not (self.policy_fps > 0 and self.execution_horizon >= 1 and self.duration_s > 0):
            raise SimConfigError("policy_fps, execution_horizon and duration_s must be positive")
        ratio = 1.0 / (self.policy_fps * self.control_period_s)
        if abs(ratio - round(ratio)) > 1e-6:
            raise SimConfigError(f"policy period 1/{self.policy_fps:g} s is not a whole number of "
                                 f"{self.control_period_s:g} s control periods")


def run_rollout(scene: AlohaScene, renderer: CameraRenderer, policy: ChunkPolicy, seed: int,
                config: RolloutConfig) -> EpisodeResult:
    """One episode of ``policy`` on ``scene`` from ``seed``'s cube placement."""
    scene.reset(seed)
    scene.advance(config.settle_substeps)
    substeps = round(config.control_period_s / scene.timestep_s)
    per_row = round(1.0 / (config.policy_fps * config.control_period_s))
    command = scene.command()
    metrics = EpisodeMetrics(scene, seed)
    chunk: FloatArray | None = None
    row = 0
    for k in range(round(config.duration_s / config.control_period_s)):
        if k % per_row == 0:
            if chunk is not None:
                row += 1
            if chunk is None or row >= min(config.execution_horizon, chunk.shape[0]):
                images = {key: renderer.render(scene.data, cam) for key, cam in config.cameras.items()}
                new = np.asarray(policy(images, scene.positions()), dtype=np.float64)
                if new.ndim != 2 or new.shape[1] != len(scene.joint_names) or not np.all(np.isfinite(new)):
                    raise SimConfigError(f"the policy returned a chunk of shape {new.shape} (or non-finite)")
                # where the old chunk would have gone now, against where the new one starts
                jump = None if chunk is None else float(np.max(np.abs(new[0] - chunk[min(row, chunk.shape[0] - 1)])))
                metrics.chunk(jump)
                chunk, row = new, 0
        assert chunk is not None
        # row r is the command at its frame time; between frames the command moves linearly to row r + 1
        frac = (k % per_row) / per_row
        nxt = chunk[min(row + 1, chunk.shape[0] - 1)]
        command, _ = scene.limits.saturate(chunk[row] + frac * (nxt - chunk[row]), command, config.control_period_s)
        scene.set_command(command)
        scene.advance(substeps)
        metrics.update(scene.positions(), scene.object_poses()[CUBE_BODY][:3], transfer_cube_stage(scene))
    return metrics.result()
