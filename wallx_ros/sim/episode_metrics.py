"""How one transfer-cube episode went, measured the same way with or without ROS.

Fed with the robot's joint positions, the cube position and gym-aloha's stage as the episode runs (and the
command jump at each chunk switch, when a chunk policy drives), it reports the final and best stage, the
closest approach of the right gripper (the one that picks) to the cube, the left gripper's final distance
to it, and the cube's final height. Gripper positions come from the scene's forward kinematics of the
reported joints, so a node that only sees ``joint_states`` gets the same numbers as the bare scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.transfer_cube import SUCCESS_STAGE

__all__ = ["EpisodeMetrics", "EpisodeResult"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class EpisodeResult:
    seed: int
    final_stage: int
    best_stage: int
    success: bool
    min_right_gripper_to_cube_m: float
    final_left_gripper_to_cube_m: float
    final_cube_height_m: float
    chunks: int
    switch_jumps: list[float]  # max |joint change| (rad / normalised gripper) at each chunk switch, as executed
    raw_switch_jumps: list[float] = field(default_factory=list)  # before blending (policy node), if reported
    velocity_jumps: list[float] = field(default_factory=list)  # command velocity step at a switch, if reported

    def summary(self) -> dict[str, float | int | bool]:
        return {"seed": self.seed, "final_stage": self.final_stage, "best_stage": self.best_stage,
                "success": self.success, "min_right_gripper_to_cube_m": round(self.min_right_gripper_to_cube_m, 4),
                "final_left_gripper_to_cube_m": round(self.final_left_gripper_to_cube_m, 4),
                "final_cube_height_m": round(self.final_cube_height_m, 4), "chunks": self.chunks,
                "switch_jump_max": round(max(self.switch_jumps), 4) if self.switch_jumps else 0.0}


class EpisodeMetrics:
    """Accumulates one episode; ``scene`` is only used for forward kinematics (its state is not touched)."""

    def __init__(self, scene: AlohaScene, seed: int) -> None:
        self.scene = scene
        self.seed = seed
        self.best_stage = 0
        self.stage = -1
        self.min_right = float("inf")
        self.final_left = float("inf")
        self.cube_height = float("nan")
        self.chunks = 0
        self.jumps: list[float] = []
        self.raw_jumps: list[float] = []
        self.velocity_jumps: list[float] = []

    def update(self, positions: FloatArray, cube: FloatArray, stage: int) -> None:
        tips = self.scene.gripper_positions_for(positions)
        self.min_right = min(self.min_right, float(np.linalg.norm(tips[1] - cube)))
        self.final_left = float(np.linalg.norm(tips[0] - cube))
        self.cube_height = float(cube[2])
        self.stage = stage
        self.best_stage = max(self.best_stage, stage)

    def chunk(self, jump: float | None, raw_jump: float | None = None, velocity_jump: float | None = None) -> None:
        """A chunk took over; ``jump``: the command step it caused (None for the first chunk); the policy node
        also reports the step before its blending (``raw_jump``) and the command velocity step."""
        self.chunks += 1
        for value, into in ((jump, self.jumps), (raw_jump, self.raw_jumps), (velocity_jump, self.velocity_jumps)):
            if value is not None and math.isfinite(value):
                into.append(float(value))

    def result(self) -> EpisodeResult:
        return EpisodeResult(
            seed=self.seed, final_stage=self.stage, best_stage=self.best_stage, success=self.stage == SUCCESS_STAGE,
            min_right_gripper_to_cube_m=self.min_right, final_left_gripper_to_cube_m=self.final_left,
            final_cube_height_m=self.cube_height, chunks=self.chunks, switch_jumps=list(self.jumps),
            raw_switch_jumps=list(self.raw_jumps), velocity_jumps=list(self.velocity_jumps))
