"""Joint limits applied to every trajectory and streamed command before it leaves the node.

* non-finite values (NaN/Inf) anywhere: the whole trajectory is rejected, nothing is published;
* position limits ``[lower, upper]`` per joint;
* max velocity per joint: consecutive points (and the first point relative to an anchor, where the robot
  is commanded to be when the trajectory starts) may not move faster than ``max_velocity``;
* max acceleration per joint (optional, ``inf`` = none): the velocity of consecutive segments may not change
  faster than ``max_acceleration``, starting from the anchor's velocity; the trajectory comes to rest at its
  last point (a joint_trajectory_controller stops there) and never needs more than ``max_acceleration`` to
  stop before a position limit;
* ``on_violation="clamp"`` (default) clamps positions and rate-limits steps, and reports what it
  changed; ``"reject"`` publishes nothing when a limit is violated.

Segment velocity ``v_i = (p_i - p_{i-1}) / dt`` and acceleration ``(v_i - v_{i-1}) / dt`` are what is
limited: the same finite differences ros2_control's joint limiters apply per control cycle. Point
velocities for the message are central differences of the safe positions, clipped to the limits, and the
LAST point's velocity is zero (a joint_trajectory_controller rejects a non-zero end velocity by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import JointLimitsError

__all__ = ["VIOLATION_POLICIES", "JointLimits", "SafetyFilter", "SafetyResult", "StepLimits"]

VIOLATION_POLICIES = ("clamp", "reject")
_NS = 1_000_000_000
_REL = 1e-9  # relative slack before a step counts as over a limit (float rounding)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits, aligned with ``names``; ``inf`` means no limit. ``max_acceleration`` may be left empty
    (no acceleration limit on any joint)."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_velocity: tuple[float, ...]
    max_acceleration: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        if not self.max_acceleration:
            object.__setattr__(self, "max_acceleration", (math.inf,) * n)
        for label, values in (("lower", self.lower), ("upper", self.upper), ("max_velocity", self.max_velocity),
                              ("max_acceleration", self.max_acceleration)):
            if len(values) != n:
                raise JointLimitsError(f"{label} has {len(values)} values for {n} joints {list(self.names)}")
            if any(math.isnan(v) for v in values):
                raise JointLimitsError(f"{label} contains NaN: use inf for 'no limit'")
        bad = [nm for nm, lo, hi in zip(self.names, self.lower, self.upper, strict=True) if lo > hi]
        if bad:
            raise JointLimitsError(f"lower > upper for joints {bad}")
        for label, values in (("max_velocity", self.max_velocity), ("max_acceleration", self.max_acceleration)):
            slow = [nm for nm, v in zip(self.names, values, strict=True) if not v > 0]
            if slow:
                raise JointLimitsError(f"{label} must be > 0 (inf = unlimited) for joints {slow}")

    @classmethod
    def unlimited(cls, names: Sequence[str]) -> JointLimits:
        inf = math.inf
        n = len(names)
        return cls(tuple(names), (-inf,) * n, (inf,) * n, (inf,) * n)

    @classmethod
    def from_parameters(cls, names: Sequence[str], lower: Sequence[float], upper: Sequence[float],
                        max_velocity: Sequence[float], base: JointLimits | None = None,
                        max_acceleration: Sequence[float] = ()) -> JointLimits:
        """Limits from node parameters; an empty list keeps ``base`` (e.g. URDF limits), one value applies
        to every joint, otherwise one value per joint."""
        names = tuple(names)
        start = base.reorder(names) if base is not None else cls.unlimited(names)

        def pick(values: Sequence[float], fallback: tuple[float, ...], label: str) -> tuple[float, ...]:
            if len(values) == 0:
                return fallback
            if len(values) == 1:
                return (float(values[0]),) * len(names)
            if len(values) != len(names):
                raise JointLimitsError(f"parameter {label} has {len(values)} values: give 0, 1 or {len(names)} "
                                       f"(one per joint of {list(names)})")
            return tuple(float(v) for v in values)

        return cls(names, pick(lower, start.lower, "position_lower"), pick(upper, start.upper, "position_upper"),
                   pick(max_velocity, start.max_velocity, "max_velocity"),
                   pick(max_acceleration, start.max_acceleration, "max_acceleration"))

    @classmethod
    def from_mapping(cls, names: Sequence[str], limits: Mapping[str, tuple[float, float, float]],
                     acceleration: Mapping[str, float] | None = None) -> JointLimits:
        """From ``{joint: (lower, upper, max_velocity)}`` (e.g. a URDF) and optionally ``{joint: max_acceleration}``;
        joints not in them are unlimited."""
        inf = math.inf
        rows = [limits.get(n, (-inf, inf, inf)) for n in names]
        acc = tuple((acceleration or {}).get(n, inf) for n in names)
        return cls(tuple(names), tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows),
                   acc)

    def reorder(self, names: Sequence[str]) -> JointLimits:
        """The limits of ``names`` (joints not in these limits: unlimited)."""
        index = {n: i for i, n in enumerate(self.names)}
        inf = math.inf

        def take(values: tuple[float, ...], default: float) -> tuple[float, ...]:
            return tuple(values[index[n]] if n in index else default for n in names)

        return JointLimits(tuple(names), take(self.lower, -inf), take(self.upper, inf), take(self.max_velocity, inf),
                           take(self.max_acceleration, inf))

    @property
    def any_limit(self) -> bool:
        return bool(np.isfinite(self.lower).any() or np.isfinite(self.upper).any()
                    or np.isfinite(self.max_velocity).any() or np.isfinite(self.max_acceleration).any())

    def unbounded(self) -> dict[str, tuple[str, ...]]:
        """What keeps motion unbounded: ``{"position range": joints, "max_velocity": joints}`` (empty lists left out).
        A joint needs a finite lower AND upper position limit and a finite max_velocity."""
        out = {"position range": tuple(n for n, lo, hi in zip(self.names, self.lower, self.upper, strict=True)
                                       if not (math.isfinite(lo) and math.isfinite(hi))),
               "max_velocity": tuple(n for n, v in zip(self.names, self.max_velocity, strict=True)
                                     if not math.isfinite(v))}
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class SafetyResult:
    """Safe positions and velocities, or ``rejected`` with the reason; ``adjustments`` lists clamps made."""

    positions: FloatArray | None
    velocities: FloatArray | None
    rejected: str = ""
    adjustments: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.rejected


def _stop_speed(distance: FloatArray, amax: FloatArray, dt: float) -> FloatArray:
    """The highest speed for the next segment of length ``dt`` after which a joint ``distance`` away from a limit
    can still stop before it, braking at ``amax``: ``v dt + v^2 / (2 amax) <= distance``. Infinite without an
    acceleration limit."""
    d = np.maximum(distance, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        bound = -amax * dt + np.sqrt(amax * amax * dt * dt + 2.0 * amax * d)
    return np.asarray(np.where(np.isfinite(amax), np.maximum(bound, 0.0), np.inf), dtype=np.float64)


@dataclass(frozen=True)
class StepLimits:
    """The velocity window of one segment: ``hard`` (speed, position-stop and rest-at-end bounds) and, within it,
    the acceleration window around the previous velocity. ``velocity()`` picks the allowed value nearest a
    wish; where the two windows do not meet (an anchor moving too fast to obey every bound) the hard bounds win
    and the value nearest the previous velocity is taken (``feasible`` False)."""

    hard_low: FloatArray
    hard_high: FloatArray
    low: FloatArray
    high: FloatArray

    @property
    def feasible(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.low <= self.high)

    def velocity(self, desired: FloatArray, previous: FloatArray | None) -> FloatArray:
        inside = np.clip(desired, self.low, self.high)
        if previous is None:
            return np.asarray(inside, dtype=np.float64)
        nearest = np.clip(previous, self.hard_low, self.hard_high)
        return np.asarray(np.where(self.feasible, inside, nearest), dtype=np.float64)


class SafetyFilter:
    """Applies ``JointLimits`` to a trajectory (positions at absolute times) or to one streamed step."""

    def __init__(self, limits: JointLimits, on_violation: str = "clamp") -> None:
        if on_violation not in VIOLATION_POLICIES:
            raise JointLimitsError(f"on_violation must be one of {VIOLATION_POLICIES}, got {on_violation!r}")
        self.limits = limits
        self.on_violation = on_violation
        self._lower = np.asarray(limits.lower, dtype=np.float64)
        self._upper = np.asarray(limits.upper, dtype=np.float64)
        self._vmax = np.asarray(limits.max_velocity, dtype=np.float64)
        self._amax = np.asarray(limits.max_acceleration, dtype=np.float64)
        self.limits_acceleration = bool(np.isfinite(self._amax).any())

    def step_limits(self, position: FloatArray, previous_velocity: FloatArray | None, dt: float,
                    rest_cap: FloatArray | None = None) -> StepLimits:
        """Velocity window of a segment of ``dt`` seconds starting at ``position`` (within the position limits)."""
        high = np.minimum(self._vmax, _stop_speed(self._upper - position, self._amax, dt))
        low = -np.minimum(self._vmax, _stop_speed(position - self._lower, self._amax, dt))
        if rest_cap is not None:
            high, low = np.minimum(high, rest_cap), np.maximum(low, -rest_cap)
        if previous_velocity is None:
            return StepLimits(low, high, low, high)
        reach = self._amax * dt
        return StepLimits(low, high, np.maximum(low, previous_velocity - reach),
                          np.minimum(high, previous_velocity + reach))

    def apply(self, times_ns: npt.NDArray[np.int64], positions: FloatArray,
              anchor: tuple[int, FloatArray] | None = None,
              anchor_velocity: FloatArray | None = None) -> SafetyResult:
        """Check/clamp ``positions`` (T x D, joints in ``limits.names`` order).

        ``anchor`` = (time, position) the trajectory starts from (where the robot is commanded to be), used to
        limit the speed towards the first point; ``anchor_velocity`` its velocity (default: at rest), used to
        limit the acceleration. Points at or before the anchor time are not limited. Without an anchor the first
        point is taken as it is and the limits apply from it on.
        """
        pos = np.array(positions, dtype=np.float64, copy=True)
        names = self.limits.names
        if pos.ndim != 2 or pos.shape[1] != len(names) or pos.shape[0] != len(times_ns):
            return SafetyResult(None, None, f"trajectory shape {pos.shape} does not match {len(times_ns)} points x "
                                            f"{len(names)} joints")
        if not np.all(np.isfinite(pos)):
            rows, cols = np.nonzero(~np.isfinite(pos))
            joints = sorted({names[c] for c in cols})
            return SafetyResult(None, None, f"non-finite positions (NaN/Inf) at {len(rows)} values, joints {joints}: "
                                            "nothing published")
        adjustments: list[str] = []
        below = pos < self._lower
        above = pos > self._upper
        if below.any() or above.any():
            over = np.maximum(self._lower - pos, 0) + np.maximum(pos - self._upper, 0)
            worst = int(np.argmax(over.max(axis=0)))
            msg = (f"position limits exceeded on {sorted({names[c] for c in np.nonzero(below | above)[1]})} "
                   f"(worst {names[worst]} by {over[:, worst].max():.4g})")
            if self.on_violation == "reject":
                return SafetyResult(None, None, msg)
            adjustments.append("clamped: " + msg)
            pos = np.clip(pos, self._lower, self._upper)
        times_s = np.asarray(times_ns, dtype=np.float64) / _NS
        start: tuple[float, FloatArray, FloatArray] | None = None
        if anchor is not None and np.all(np.isfinite(anchor[1])):
            # a robot outside its limits is brought back from the limit, never commanded outside it
            velocity = np.zeros(len(names)) if anchor_velocity is None else np.asarray(anchor_velocity, np.float64)
            start = (anchor[0] / _NS, np.clip(np.asarray(anchor[1], dtype=np.float64), self._lower, self._upper),
                     np.where(np.isfinite(velocity), velocity, 0.0))
        if self.limits_acceleration or (np.isfinite(self._vmax).any() and self._speeding(times_s, pos, start)):
            limited = self._rate_limit(times_s, pos, start)
            if limited:
                if self.on_violation == "reject":
                    return SafetyResult(None, None, "; ".join(limited))
                adjustments += ["rate-limited: " + m for m in limited]
        vel = self.velocities(times_s, pos)
        return SafetyResult(pos, vel, "", tuple(adjustments))

    def _rate_limit(self, times_s: FloatArray, pos: FloatArray,
                    start: tuple[float, FloatArray, FloatArray] | None) -> list[str]:
        """Forward pass over the points (in place): each segment's velocity within its window. Returns what was
        limited (empty: nothing changed)."""
        names = self.limits.names
        n = pos.shape[0]
        # rest at the end: after the last point the velocity is zero, so segment i may not be faster than what
        # max_acceleration can take down to zero over the segments after it (and one more, the stop itself)
        last_dt = float(times_s[-1] - times_s[-2]) if n > 1 else (times_s[0] - start[0] if start else math.inf)
        remaining = (times_s[-1] - times_s) + last_dt
        rest_caps = self._amax[None, :] * remaining[:, None] if self.limits_acceleration else None
        speeding: set[str] = set()
        jerky: set[str] = set()
        worst_v = worst_a = 1.0
        unmet = False
        prev: tuple[float, FloatArray, FloatArray | None] | None = start
        for i in range(n):
            if prev is None or times_s[i] <= prev[0]:
                prev = (float(times_s[i]), pos[i], None if prev is None or start is None else prev[2])
                continue
            t0, p0, v0 = prev
            dt = float(times_s[i] - t0)
            desired = (pos[i] - p0) / dt
            window = self.step_limits(p0, v0, dt, None if rest_caps is None else rest_caps[i])
            v = window.velocity(desired, v0)
            changed = np.abs(v - desired) > 1e-12 + _REL * np.abs(desired)
            if changed.any():
                fast = changed & (np.abs(desired) > self._vmax * (1 + _REL))
                if fast.any():
                    speeding.update(names[c] for c in np.flatnonzero(fast))
                    worst_v = max(worst_v, float(np.max(np.abs(desired[fast]) / self._vmax[fast])))
                # over the acceleration window, or held back to stop in time (limit ahead, end of the trajectory)
                jolt = np.abs(desired - v0) > self._amax * dt * (1 + _REL) if v0 is not None else np.zeros_like(fast)
                other = changed & (jolt | ~fast)
                if other.any():
                    jerky.update(names[c] for c in np.flatnonzero(other))
                    if v0 is not None:
                        ratio = np.abs(desired[other] - v0[other]) / (self._amax[other] * dt)
                        worst_a = max(worst_a, float(np.max(np.where(np.isfinite(ratio), ratio, 1.0))))
                unmet = unmet or not bool(window.feasible.all())
                pos[i] = p0 + v * dt
            prev = (float(times_s[i]), pos[i], v)
        out = []
        if speeding:
            out.append(f"max_velocity exceeded on {sorted(speeding)} (up to {worst_v:.2f}x the limit)")
        if jerky:
            out.append(f"max_acceleration exceeded on {sorted(jerky)} (up to {worst_a:.2f}x the limit, or no room "
                       "to stop before a position limit or the trajectory's end)")
        if unmet:
            out.append("the start velocity is too high to meet max_acceleration: braking as hard as the speed and "
                       "position limits allow")
        return out

    def _speeding(self, times_s: FloatArray, pos: FloatArray,
                  start: tuple[float, FloatArray, FloatArray] | None) -> bool:
        """Vectorised pre-check: does any step (anchor -> first point, point -> point) exceed max_velocity?"""
        t, p = times_s, pos
        if start is not None:
            t, p = np.concatenate([[start[0]], times_s]), np.vstack([start[1], pos])
        dt = np.diff(t)
        step = np.abs(np.diff(p, axis=0))
        return bool(np.any((dt[:, None] > 0) & (step > dt[:, None] * self._vmax * (1 + _REL))))

    def velocities(self, times_s: FloatArray, pos: FloatArray) -> FloatArray:
        """Finite-difference velocities at each point, clipped to the limits; the last point's are zero."""
        if pos.shape[0] < 2:
            return np.zeros_like(pos)
        vel = np.zeros_like(pos)  # the last point's stays zero: the trajectory ends at rest
        vel[0] = (pos[1] - pos[0]) / (times_s[1] - times_s[0])
        vel[1:-1] = (pos[2:] - pos[:-2]) / (times_s[2:] - times_s[:-2])[:, None]
        return np.asarray(np.clip(vel, -self._vmax, self._vmax), dtype=np.float64)

    def stream_step(self, target: FloatArray, target_velocity: FloatArray, last: FloatArray,
                    last_velocity: FloatArray, dt_s: float) -> tuple[FloatArray, FloatArray]:
        """One streamed position command ``dt_s`` after ``last`` (moving at ``last_velocity``), towards ``target``
        (a plan point moving at ``target_velocity``). A stream is a direct position command: no controller
        interpolates between two of them, so each one obeys the limits by itself. With an acceleration limit the
        approach slows down in time to meet the target without overshooting it. Returns (position, velocity)."""
        if not dt_s > 0:  # a clock that jumped back allows no motion this tick
            return last.copy(), np.zeros_like(last)
        target = np.clip(target, self._lower, self._upper)
        desired = (target - last) / dt_s
        window = self.step_limits(np.clip(last, self._lower, self._upper), last_velocity, dt_s)
        if self.limits_acceleration:
            error = target - last
            approach = _stop_speed(np.abs(error), self._amax, dt_s)
            low = np.where(error < 0, np.maximum(window.low, np.minimum(target_velocity - approach, window.high)),
                           window.low)
            high = np.where(error > 0, np.minimum(window.high, np.maximum(target_velocity + approach, window.low)),
                            window.high)
            window = StepLimits(window.hard_low, window.hard_high, low, high)
        velocity = window.velocity(desired, last_velocity)
        return np.asarray(last + velocity * dt_s, dtype=np.float64), velocity

    def braking(self, position: FloatArray, velocity: FloatArray, dt_s: float,
                max_points: int = 10_000) -> tuple[FloatArray, FloatArray]:
        """Points every ``dt_s`` that bring a joint set moving at ``velocity`` to rest at ``max_acceleration``
        (the last row at rest). Joints without an acceleration limit stop at once. Returns (positions, velocities),
        at least one row."""
        p = np.clip(np.asarray(position, dtype=np.float64), self._lower, self._upper)
        v = np.clip(np.where(np.isfinite(self._amax), np.nan_to_num(velocity), 0.0), -self._vmax, self._vmax)
        rows_p: list[FloatArray] = []
        rows_v: list[FloatArray] = []
        while np.any(v != 0.0) and len(rows_p) < max_points:
            v = np.sign(v) * np.maximum(np.abs(v) - self._amax * dt_s, 0.0)
            v = np.where(np.isfinite(self._amax) & (np.abs(v) > 1e-12), v, 0.0)  # rounding: 1.0 - 5 x 0.2 is 0
            p = np.clip(p + v * dt_s, self._lower, self._upper)
            rows_p.append(p.copy())
            rows_v.append(v.copy())
        if not rows_p:
            return p[None, :].copy(), np.zeros((1, len(p)))
        rows_v[-1] = np.zeros_like(rows_v[-1])
        return np.asarray(rows_p, dtype=np.float64), np.asarray(rows_v, dtype=np.float64)
