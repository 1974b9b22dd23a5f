"""The embedded simulation: a gym-aloha scene, a JTC-like trajectory executor and the cameras, on sim time.

``Simulation.step()`` advances exactly one control period: the executor turns the newest accepted
trajectory into a position setpoint, the joint limits saturate it (position range and maximum velocity,
as ros2_control's command-limit enforcement does), the physics runs the period in fixed substeps, and sim
time moves on by the period.
Time is an integer nanosecond counter (no drift); it is what a ROS node publishes on ``/clock``.
How fast sim time runs against the wall clock is the caller's business (the node paces it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.core.joint_trajectory_rules import JtcOptions
from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.camera_renderer import CameraIntrinsics, CameraRenderer
from wallx_ros.sim.config import SimConfig
from wallx_ros.sim.errors import SceneError, SimConfigError
from wallx_ros.sim.joint_limits import ActuatorLimits
from wallx_ros.sim.trajectory_executor import ExecutionPhase, ReceivedTrajectory, TrajectoryExecutor

__all__ = ["SimStats", "Simulation", "StepResult"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class StepResult:
    """State after one control period (robot joint order)."""

    time_ns: int
    positions: FloatArray
    velocities: FloatArray
    command: FloatArray
    phase: ExecutionPhase
    clamped: bool  # the executor's setpoint was limited (position range or max velocity)
    wall_ms: float  # wall time the step took


@dataclass
class SimStats:
    """Wall-clock cost of the simulation (monotonic clock) and command limiting, since start-up."""

    steps: int = 0
    clamped_steps: int = 0
    step_wall_s: float = 0.0
    frames: int = 0
    render_wall_s: float = 0.0

    @property
    def mean_step_ms(self) -> float:
        return 1000.0 * self.step_wall_s / self.steps if self.steps else 0.0

    @property
    def mean_render_ms(self) -> float:
        """Mean wall time to render one camera frame."""
        return 1000.0 * self.render_wall_s / self.frames if self.frames else 0.0


class Simulation:
    """One running scene. Not thread-safe: call ``offer``, ``step`` and ``render`` from one thread."""

    def __init__(self, config: SimConfig, options: JtcOptions | None = None,
                 interpolate_from_desired_state: bool = False) -> None:
        self.config = config
        self.scene = AlohaScene(config.scene, config.seed, config.max_joint_velocity, config.max_gripper_velocity)
        period_s = config.control_period_ns * 1e-9
        substeps = round(period_s / self.scene.timestep_s)
        if substeps < 1 or abs(substeps * self.scene.timestep_s - period_s) > 1e-9:
            raise SimConfigError(
                f"control period {period_s * 1e3:g} ms is not a whole number of physics steps of "
                f"{self.scene.timestep_s * 1e3:g} ms: choose control_rate_hz so that it is (e.g. 50, 100, 250)"
            )
        self._substeps = substeps
        self._period_s = period_s
        self._command = self.scene.command()
        self.executor = TrajectoryExecutor(self.scene.joint_names, options, interpolate_from_desired_state)
        self.stats = SimStats()
        self._time_ns = 0
        self._next_frame_ns = 0
        missing = [c.mjcf_camera for c in config.cameras if c.mjcf_camera not in self.scene.camera_names]
        if missing:
            raise SceneError(
                f"scene {config.scene} has no camera {missing}; its cameras: {list(self.scene.camera_names)}")
        self.renderer: CameraRenderer | None = None
        if config.camera_rate_hz > 0 and config.cameras:
            self.renderer = CameraRenderer(self.scene.model, config.image_width, config.image_height,
                                           shadows=config.render_shadows)

    # -- properties ---------------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.scene.joint_names

    @property
    def limits(self) -> ActuatorLimits:
        return self.scene.limits

    @property
    def time_ns(self) -> int:
        return self._time_ns

    # -- commands -----------------------------------------------------------------------------------------
    def offer(self, command: ReceivedTrajectory) -> list[str]:
        """A trajectory arrives now (sim time): returns JTC's reasons to reject it, empty if accepted."""
        return self.executor.offer(command, self._time_ns)

    def reset(self, seed: int) -> None:
        """A new episode: objects placed for ``seed`` (-1: the scene keyframe), arms back at the start pose,
        any trajectory dropped (the executor holds the start pose). Sim time keeps running (``/clock`` never
        goes back); the next camera frame is rendered at the next step."""
        self.scene.reset(seed)
        self._command = self.scene.command()
        self.executor.reset(self.scene.positions())
        self._next_frame_ns = self._time_ns

    # -- stepping -----------------------------------------------------------------------------------------
    def step(self) -> StepResult:
        """Advance one control period."""
        start = time.monotonic()
        setpoint = self.executor.update(self._time_ns, self.scene.positions(), self.scene.velocities())
        self._command, clamped = self.scene.limits.saturate(setpoint.positions, self._command, self._period_s)
        self.scene.set_command(self._command)
        self.scene.advance(self._substeps)
        self._time_ns += self.config.control_period_ns
        self.stats.steps += 1
        self.stats.clamped_steps += int(clamped)
        wall_s = time.monotonic() - start
        self.stats.step_wall_s += wall_s
        return StepResult(self._time_ns, self.scene.positions(), self.scene.velocities(), self._command.copy(),
                          setpoint.phase, clamped, wall_s * 1e3)

    # -- cameras ------------------------------------------------------------------------------------------
    def frames_due(self) -> bool:
        """True when the cameras should be rendered for the current sim time (at ``camera_rate_hz``)."""
        return self.renderer is not None and self._time_ns >= self._next_frame_ns

    def render(self) -> dict[str, npt.NDArray[np.uint8]]:
        """Render every camera now (key -> RGB uint8 image) and schedule the next frame."""
        if self.renderer is None:
            return {}
        period_ns = round(1e9 / self.config.camera_rate_hz)
        while self._next_frame_ns <= self._time_ns:
            self._next_frame_ns += period_ns
        frames = {}
        for cam in self.config.cameras:
            start = time.monotonic()
            frames[cam.key] = self.renderer.render(self.scene.data, cam.mjcf_camera)
            self.stats.render_wall_s += time.monotonic() - start
            self.stats.frames += 1
        return frames

    def intrinsics(self, key: str) -> CameraIntrinsics:
        if self.renderer is None:
            raise SceneError("rendering is off (camera_rate_hz is 0 or no cameras are configured)")
        cams = {c.key: c.mjcf_camera for c in self.config.cameras}
        return self.renderer.intrinsics(cams[key])

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
