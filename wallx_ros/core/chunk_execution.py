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
  ``c1`` is the same mix, but it puts the chunk on the running plan's row grid (its origin moves by less than
  half a row), reads the old plan as the controller executes it (cubic with the published velocities), keeps
  it up to the second row after the switch (the rows that shape the controller's segment there) and
  stretches the blend until the blend's own velocity and acceleration stay within ``max_velocity`` /
  ``max_acceleration``: position AND velocity are continuous at the switch (the smoothstep weight and its
  slope are 0 there), and the added acceleration is bounded.
* **Real-time chunking** (RTC, ``core/realtime_chunking``): ``prefix`` gives the running plan at the rows of
  a chunk not computed yet, for the model to continue it; such chunks are merged without blending.
* **Boundary jump**: max |new - old| over joints at the switch time, before (``raw_jump``) and after
  (``published_jump``) blending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ControlConfigError
from wallx_ros.core.trajectory_sampling import sample_controller

__all__ = ["BLEND_MODES", "ChunkExecutor", "ExecutionConfig", "MergeResult", "Plan", "PlanPrefix"]

BLEND_MODES = ("none", "crossfade", "c1")
_NS = 1_000_000_000


@dataclass(frozen=True)
class ExecutionConfig:
    """execution_horizon: rows executed before the next chunk should take over (1..chunk length).
    blend / blend_steps: none | crossfade | c1, and the blend width in rows (0 = switch hard; c1: the
        shortest blend, longer when the limits need it).
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
    """Joint positions at absolute times (ns, ROS clock); ``origin_ns`` is the chunk's time zero.
    ``entry_velocity``: the velocity the robot is commanded to arrive at the first point with (the step from where
    the plan was anchored; None: from rest)."""

    names: tuple[str, ...]
    origin_ns: int
    times_ns: npt.NDArray[np.int64]
    positions: npt.NDArray[np.float64]
    velocities: npt.NDArray[np.float64] | None = None
    entry_velocity: npt.NDArray[np.float64] | None = None

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

    def velocity_before(self, t_ns: int) -> npt.NDArray[np.float64]:
        """Velocity the plan arrives at ``t_ns`` with (the slope of the segment that contains or ends at it): what
        a trajectory that replaces the plan from ``t_ns`` on accelerates from. At a point this is the segment
        before it (``sample_velocity`` gives the one after, which the replacement never runs); up to the first
        point the ``entry_velocity``; after the last point zero (the plan holds it)."""
        if t_ns <= self.times_ns[0]:
            if self.entry_velocity is None:
                return np.zeros(len(self.names))
            return np.array(self.entry_velocity, dtype=np.float64)
        if t_ns > self.times_ns[-1]:
            return np.zeros(len(self.names))
        i = int(np.searchsorted(self.times_ns, t_ns, side="left")) - 1
        dt = (self.times_ns[i + 1] - self.times_ns[i]) / _NS
        return np.asarray((self.positions[i + 1] - self.positions[i]) / dt, dtype=np.float64)

    def times_from_origin_ns(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.times_ns - self.origin_ns, dtype=np.int64)

    def sample_controller(self, times_ns: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64],
                                                                          npt.NDArray[np.float64]]:
        """Positions and velocities at ``times_ns`` as a joint_trajectory_controller executes the plan once
        published (cubic with the velocities when the plan has them; the last point held after the end)."""
        pos, vel, _ = sample_controller(self.times_ns, self.positions, self.velocities,
                                        np.asarray(times_ns, dtype=np.int64))
        return pos, vel


@dataclass(frozen=True)
class PlanPrefix:
    """The running plan at the rows of a chunk still to be computed (robot units): the chunk's ``origin_ns``,
    ``times_ns`` of the rows the plan covers, its ``positions`` there, ``delay_steps`` (rows at or before the
    expected take-over) and ``frozen`` (the rows the chunk must reproduce)."""

    origin_ns: int
    times_ns: npt.NDArray[np.int64]
    positions: npt.NDArray[np.float64]
    frozen: int
    delay_steps: int = 0


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
    """Turns each new chunk into the plan to publish, given the plan published before it.

    ``max_velocity`` / ``max_acceleration``: per-joint limits (inf = none) the ``c1`` blend stays within.
    """

    def __init__(self, config: ExecutionConfig, dt_s: float, max_velocity: npt.ArrayLike | None = None,
                 max_acceleration: npt.ArrayLike | None = None) -> None:
        if not (np.isfinite(dt_s) and dt_s > 0):
            raise ControlConfigError(f"dt_s must be > 0, got {dt_s}")
        self.config = config
        self.dt_ns = round(dt_s * _NS)
        self.plan: Plan | None = None
        self.max_velocity = None if max_velocity is None else np.asarray(max_velocity, dtype=np.float64)
        self.max_acceleration = None if max_acceleration is None else np.asarray(max_acceleration, dtype=np.float64)
        self.last_blend_ns = 0  # width of the last c1 blend (diagnostics, tests)

    def reset(self) -> None:
        """Forget the current plan (after a hold, pause or e-stop the next chunk starts afresh)."""
        self.plan = None

    def replan_due(self, now_ns: int, expected_latency_s: float = 0.0) -> bool:
        """True when the next observation should go to the model."""
        if self.plan is None:
            return True
        due = self.plan.origin_ns + self.config.execution_horizon * self.dt_ns - round(expected_latency_s * _NS)
        return now_ns >= due

    def replan_in_ns(self, now_ns: int, expected_latency_s: float = 0.0) -> int:
        """Time until ``replan_due`` turns true (0 when it is true now): how long the model is free."""
        if self.plan is None:
            return 0
        due = self.plan.origin_ns + self.config.execution_horizon * self.dt_ns - round(expected_latency_s * _NS)
        return max(0, due - now_ns)

    def origin_for(self, observation_stamp_ns: int, now_ns: int) -> int:
        if self.config.latency_compensation:
            return observation_stamp_ns + round(self.config.latency_offset_s * _NS)
        return now_ns

    def prefix(self, observation_stamp_ns: int, delay_s: float, rows: int) -> PlanPrefix | None:
        """The running plan at the first ``rows`` rows of the chunk an observation stamped ``observation_stamp_ns``
        will produce, if that chunk takes over ``delay_s`` after the stamp (None without a plan or overlap).

        With latency compensation the chunk's time origin is put on the running plan's row grid (it moves by at
        most half a row): the rows then coincide with points the running plan published, so the prefix is those
        points exactly (an interpolated cubic between rate-limited points can step faster than the limit, and
        the safety filter would clamp the copy). The merge must use the same origin (``PlanPrefix.origin_ns``).
        Without latency compensation the chunk starts when it arrives: the origin is the expected take-over and
        no row is frozen by the delay.

        Frozen rows: those at or before the take-over (``delay_steps``; they execute from the running plan
        whatever the model says) plus the two that shape what the controller executes at the take-over: the end
        of the segment it is on, and the next row, through the published finite-difference velocity.
        """
        plan = self.plan
        if plan is None or rows < 1:
            return None
        takeover = observation_stamp_ns + round(max(delay_s, 0.0) * _NS)
        origin = self.origin_for(observation_stamp_ns, takeover)
        if self.config.latency_compensation:
            origin = plan.origin_ns + round((origin - plan.origin_ns) / self.dt_ns) * self.dt_ns
        rows_ns = origin + self.dt_ns * np.arange(1, rows + 1, dtype=np.int64)
        covered = int(np.count_nonzero(rows_ns <= plan.end_ns))
        if covered == 0:
            return None
        times = np.asarray(rows_ns[:covered], dtype=np.int64)
        positions, _ = plan.sample_controller(times)
        delay_steps = int(np.count_nonzero(times <= takeover)) if self.config.latency_compensation else 0
        frozen = min(covered, delay_steps + 2) if self.config.latency_compensation else 0
        return PlanPrefix(origin, times, positions, frozen, delay_steps)

    def _c1_width_ns(self, diff: npt.NDArray[np.float64], times_ns: npt.NDArray[np.int64], switch_ns: int) -> int:
        """Blend width for the differences ``diff`` (future rows x joints) between new chunk and old plan.

        The blend adds ``w(s) * diff`` with the smoothstep ``w`` over width T: its velocity is at most
        1.5 |diff| / T + |diff'|, its acceleration at most 6 |diff| / T^2 + 3 |diff'| / T (plus the chunks' own
        curvature). T is the smallest width that keeps those within the limits, at least ``blend_steps`` rows,
        at most up to the chunk's last row (then the limits may not hold: the safety filter still applies).
        """
        width_s = self.config.blend_steps * self.dt_ns / _NS
        if len(diff):
            dp = np.max(np.abs(diff), axis=0)
            dv = np.max(np.abs(np.diff(diff, axis=0)), axis=0) / (self.dt_ns / _NS) if len(diff) > 1 else 0 * dp
            vmax, amax = self.max_velocity, self.max_acceleration
            if vmax is not None and vmax.shape == dp.shape:
                ok = np.isfinite(vmax) & (vmax > 0)
                if ok.any():
                    width_s = max(width_s, float(np.max(1.5 * dp[ok] / vmax[ok])))
            if amax is not None and amax.shape == dp.shape:
                ok = np.isfinite(amax) & (amax > 0)
                if ok.any():
                    a, p, v = amax[ok], dp[ok], dv[ok]
                    width_s = max(width_s, float(np.max((3 * v + np.sqrt(9 * v**2 + 24 * a * p)) / (2 * a))))
        return min(round(width_s * _NS), int(times_ns[-1]) - switch_ns)

    def _c1_blend(self, old: Plan, times: npt.NDArray[np.int64], actions: npt.NDArray[np.float64],
                  switch_ns: int) -> npt.NDArray[np.float64]:
        """The running plan until the second row after the switch, then the smoothstep mix towards the new chunk.

        At the switch the controller runs the cubic between the rows around it, with velocities that are finite
        differences over their neighbours: the rows up to the second one after the switch are the running plan's,
        so that segment is the running plan's own (on the same row grid: see ``merge``)."""
        old_at, _ = old.sample_controller(times)
        diff = actions - old_at
        future = np.flatnonzero(times > switch_ns)
        start = int(times[future[1]]) if len(future) > 1 else switch_ns
        width = self._c1_width_ns(diff[times > start], times, start)
        self.last_blend_ns = max(width, 0)
        if width <= 0:
            w = (times > start).astype(np.float64)
        else:
            w = _smoothstep((times - start).astype(np.float64) / width)
        return np.asarray(old_at + w[:, None] * diff, dtype=np.float64)

    def merge(self, actions: npt.NDArray[np.float64], names: Sequence[str], observation_stamp_ns: int,
              now_ns: int, commit: bool = True, blend: str | None = None, origin_ns: int | None = None) -> MergeResult:
        """Blend ``actions`` (rows x joints, robot units) into the current plan; switch time = ``now_ns``.

        ``commit=False`` computes the result without making it the current plan (e.g. before a safety
        check decides whether it is published; call ``commit(result.plan)`` then). ``blend`` overrides the
        configured blend mode (an RTC chunk continues the running plan by itself: ``"none"``); ``origin_ns`` the
        chunk's time origin (an RTC chunk keeps the origin its prefix was computed for).
        """
        blend = self.config.blend if blend is None else blend
        if blend not in BLEND_MODES:
            raise ControlConfigError(f"blend must be one of {BLEND_MODES}, got {blend!r}")
        actions = np.asarray(actions, dtype=np.float64)
        names = tuple(names)
        origin = self.origin_for(observation_stamp_ns, now_ns) if origin_ns is None else origin_ns
        old = self.plan if self.plan is not None and self.plan.names == names else None
        if blend == "c1" and old is not None and origin_ns is None and self.config.latency_compensation:
            origin = old.origin_ns + round((origin - old.origin_ns) / self.dt_ns) * self.dt_ns  # same row grid
        times = origin + self.dt_ns * (np.arange(1, actions.shape[0] + 1, dtype=np.int64))
        new = Plan(names, origin, times, actions)
        past = int(np.count_nonzero(times <= now_ns))
        raw_jump = published_jump = None
        positions = actions
        if old is not None:
            old_at = old.sample_many(times)
            old_now = old.sample(now_ns)
            raw_jump = float(np.max(np.abs(new.sample(now_ns) - old_now)))
            if blend == "crossfade":
                width = max(self.config.blend_steps, 0) * self.dt_ns
                if width > 0:
                    w = _smoothstep((times - now_ns).astype(np.float64) / width)
                else:
                    w = (times > now_ns).astype(np.float64)
                positions = (1.0 - w)[:, None] * old_at + w[:, None] * actions
            elif blend == "c1":
                positions = self._c1_blend(old, times, actions, now_ns)
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
