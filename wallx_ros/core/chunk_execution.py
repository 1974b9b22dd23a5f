"""Executing overlapping action chunks: time alignment, execution horizon, cross-fade, boundary jump.

A chunk predicted from an observation taken at ``t_obs`` holds rows for ``t_obs + (i + 1) * dt``
(LeRobot's convention). This module turns successive chunks into one continuous joint-space plan
(absolute times on the ROS clock), without any ROS types:

* **Latency compensation** (``latency_compensation=True``): the chunk's time origin is the observation
  stamp plus ``latency_offset_s``; by the time it is published, rows whose time has passed are in the
  past and a joint_trajectory_controller skips them (it samples the trajectory at "now"). With
  ``latency_compensation=False`` the origin is the publish time: the chunk is executed from its first
  row, late by the inference delay (what a synchronous LeRobot loop does).
* **Execution horizon** ``k``: a new observation is wanted once ``k`` rows of the current plan have
  been executed, minus the expected inference latency, so that the next chunk arrives around row k.
* **Blending**: jazzy/kilted controllers replace the running trajectory with the newest one, so
  continuity across chunks is done here. ``crossfade`` mixes old and new plans over ``blend_steps``
  rows after the switch time with a smoothstep weight (0 at the switch, 1 after), so the published
  trajectory starts exactly where the old one is. Points of the new chunk that already lie in the past
  take the old plan's values (a controller that samples between a past and a future point sees no step).
  RTC-style conditioning on the unexecuted prefix needs guidance inside the flow sampler; LeRobot's
  wall_x does not support it (``supports_rtc()`` is False), so it is not offered.
* **Boundary jump**: max |new - old| over joints at the switch time, before (``raw_jump``) and after
  (``published_jump``) blending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ControlConfigError

__all__ = ["BLEND_MODES", "ChunkExecutor", "ExecutionConfig", "MergeResult", "Plan"]

BLEND_MODES = ("none", "crossfade")
_NS = 1_000_000_000


@dataclass(frozen=True)
class ExecutionConfig:
    """execution_horizon: rows executed before the next chunk should take over (1..chunk length).
    blend / blend_steps: cross-fade width in rows (0 = switch hard).
    latency_compensation / latency_offset_s: time origin of a chunk = observation stamp + offset (True),
        or the publish time (False).
    min_lead_s: a merged plan whose last point is less than this far ahead of "now" is dropped as
        expired (a controller would reject or barely run it).
    """

    execution_horizon: int = 16
    blend: str = "crossfade"
    blend_steps: int = 8
    latency_compensation: bool = True
    latency_offset_s: float = 0.0
    min_lead_s: float = 0.04

    def __post_init__(self) -> None:
        if self.execution_horizon < 1:
            raise ControlConfigError(f"execution_horizon must be >= 1 row, got {self.execution_horizon}")
        if self.blend not in BLEND_MODES:
            raise ControlConfigError(f"blend must be one of {BLEND_MODES}, got {self.blend!r}")
        if self.blend_steps < 0:
            raise ControlConfigError(f"blend_steps must be >= 0, got {self.blend_steps}")
        if not np.isfinite(self.latency_offset_s) or abs(self.latency_offset_s) > 10:
            raise ControlConfigError(f"latency_offset_s must be finite and within +-10 s, got {self.latency_offset_s}")
        if not self.min_lead_s >= 0:
            raise ControlConfigError(f"min_lead_s must be >= 0, got {self.min_lead_s}")


@dataclass(frozen=True)
class Plan:
    """Joint positions at absolute times (ns, ROS clock); ``origin_ns`` is the chunk's time zero."""

    names: tuple[str, ...]
    origin_ns: int
    times_ns: npt.NDArray[np.int64]
    positions: npt.NDArray[np.float64]
    velocities: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        if self.positions.ndim != 2 or self.positions.shape != (len(self.times_ns), len(self.names)):
            raise ControlConfigError(f"plan positions {self.positions.shape} do not match "
                                     f"{len(self.times_ns)} times x {len(self.names)} joints")
        if len(self.times_ns) == 0 or np.any(np.diff(self.times_ns) <= 0):
            raise ControlConfigError("plan times must be non-empty and strictly increasing")

    @property
    def end_ns(self) -> int:
        return int(self.times_ns[-1])

    def sample(self, t_ns: int) -> npt.NDArray[np.float64]:
        """Position at ``t_ns``: linear between points, the first point before it, the last after it."""
        return np.asarray(self.sample_many(np.array([t_ns], dtype=np.int64))[0], dtype=np.float64)

    def sample_many(self, times_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Positions at each of ``times_ns`` (rows), vectorised ``sample``."""
        query = np.asarray(times_ns, dtype=np.int64)
        n = len(self.times_ns)
        if n == 1:
            return np.repeat(self.positions[:1], len(query), axis=0)
        i = np.clip(np.searchsorted(self.times_ns, query, side="right") - 1, 0, n - 2)
        t0, t1 = self.times_ns[i], self.times_ns[i + 1]
        w = np.clip((query - t0).astype(np.float64) / (t1 - t0).astype(np.float64), 0.0, 1.0)
        p0, p1 = self.positions[i], self.positions[i + 1]
        return np.asarray(p0 + w[:, None] * (p1 - p0), dtype=np.float64)

    def sample_velocity(self, t_ns: int) -> npt.NDArray[np.float64]:
        """Velocity at ``t_ns`` (slope of the segment; zero outside the plan)."""
        if t_ns < self.times_ns[0] or t_ns >= self.times_ns[-1] or len(self.times_ns) < 2:
            return np.zeros(len(self.names))
        i = int(np.searchsorted(self.times_ns, t_ns, side="right")) - 1
        dt = (self.times_ns[i + 1] - self.times_ns[i]) / _NS
        return np.asarray((self.positions[i + 1] - self.positions[i]) / dt, dtype=np.float64)

    def times_from_origin_ns(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.times_ns - self.origin_ns, dtype=np.int64)


@dataclass(frozen=True)
class MergeResult:
    """The plan to publish and what happened at the boundary."""

    plan: Plan
    switch_ns: int
    raw_jump: float | None
    published_jump: float | None
    past_points: int
    expired: bool

    @property
    def expiry_reason(self) -> str:
        if not self.expired:
            return ""
        return (f"chunk expired: its last point is {(self.plan.end_ns - self.switch_ns) / 1e6:.0f} ms from now "
                "(inference slower than the chunk; use a smaller fps/longer chunk, a faster device, "
                "or latency_compensation false)")


def _smoothstep(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x * x * (3.0 - 2.0 * x), dtype=np.float64)


class ChunkExecutor:
    """Turns each new chunk into the plan to publish, given the plan published before it."""

    def __init__(self, config: ExecutionConfig, dt_s: float) -> None:
        if not (np.isfinite(dt_s) and dt_s > 0):
            raise ControlConfigError(f"dt_s must be > 0, got {dt_s}")
        self.config = config
        self.dt_ns = round(dt_s * _NS)
        self.plan: Plan | None = None

    def reset(self) -> None:
        """Forget the current plan (after a hold, pause or e-stop the next chunk starts afresh)."""
        self.plan = None

    def replan_due(self, now_ns: int, expected_latency_s: float = 0.0) -> bool:
        """True when the next observation should go to the model."""
        if self.plan is None:
            return True
        due = self.plan.origin_ns + self.config.execution_horizon * self.dt_ns - round(expected_latency_s * _NS)
        return now_ns >= due

    def origin_for(self, observation_stamp_ns: int, now_ns: int) -> int:
        if self.config.latency_compensation:
            return observation_stamp_ns + round(self.config.latency_offset_s * _NS)
        return now_ns

    def merge(self, actions: npt.NDArray[np.float64], names: Sequence[str], observation_stamp_ns: int,
              now_ns: int, commit: bool = True) -> MergeResult:
        """Blend ``actions`` (rows x joints, robot units) into the current plan; switch time = ``now_ns``.

        ``commit=False`` computes the result without making it the current plan (e.g. before a safety
        check decides whether it is published; call ``commit(result.plan)`` then).
        """
        actions = np.asarray(actions, dtype=np.float64)
        names = tuple(names)
        origin = self.origin_for(observation_stamp_ns, now_ns)
        times = origin + self.dt_ns * (np.arange(1, actions.shape[0] + 1, dtype=np.int64))
        new = Plan(names, origin, times, actions)
        old = self.plan if self.plan is not None and self.plan.names == names else None
        past = int(np.count_nonzero(times <= now_ns))
        raw_jump = published_jump = None
        positions = actions
        if old is not None:
            old_at = old.sample_many(times)
            old_now = old.sample(now_ns)
            raw_jump = float(np.max(np.abs(new.sample(now_ns) - old_now)))
            if self.config.blend == "crossfade":
                width = max(self.config.blend_steps, 0) * self.dt_ns
                if width > 0:
                    w = _smoothstep((times - now_ns).astype(np.float64) / width)
                else:
                    w = (times > now_ns).astype(np.float64)
                positions = (1.0 - w)[:, None] * old_at + w[:, None] * actions
            published = Plan(names, origin, times, positions)
            published_jump = float(np.max(np.abs(published.sample(now_ns) - old_now)))
            new = published
        expired = bool(new.end_ns - now_ns < round(self.config.min_lead_s * _NS))
        result = MergeResult(new, now_ns, raw_jump, published_jump, past, expired)
        if commit and not expired:
            self.plan = new
        return result

    def commit(self, plan: Plan) -> None:
        """Make ``plan`` (what was actually published, e.g. after safety limits) the current plan."""
        self.plan = plan
