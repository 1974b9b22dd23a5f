"""Joint limits applied to every trajectory before it leaves the node.

* non-finite values (NaN/Inf) anywhere: the whole trajectory is rejected, nothing is published;
* position limits ``[lower, upper]`` per joint (``-inf``/``inf`` = unlimited, e.g. continuous joints);
* max velocity per joint: consecutive points (and the first point relative to an anchor, the robot's
  position at the observation) may not move faster than ``max_velocity``;
* ``on_violation="clamp"`` (default) clamps positions and rate-limits steps, and reports what it
  changed; ``"reject"`` publishes nothing when a limit is violated.

Velocities for the message are finite differences of the safe positions, clipped to the limits, and
the LAST point's velocity is zero (a joint_trajectory_controller rejects a non-zero end velocity by
default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import JointLimitsError

__all__ = ["VIOLATION_POLICIES", "JointLimits", "SafetyFilter", "SafetyResult"]

VIOLATION_POLICIES = ("clamp", "reject")
_NS = 1_000_000_000


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits, aligned with ``names``."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_velocity: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        for label, values in (("lower", self.lower), ("upper", self.upper), ("max_velocity", self.max_velocity)):
            if len(values) != n:
                raise JointLimitsError(f"{label} has {len(values)} values for {n} joints {list(self.names)}")
            if any(np.isnan(v) for v in values):
                raise JointLimitsError(f"{label} contains NaN: use inf for 'no limit'")
        bad = [nm for nm, lo, hi in zip(self.names, self.lower, self.upper, strict=True) if lo > hi]
        if bad:
            raise JointLimitsError(f"lower > upper for joints {bad}")
        slow = [nm for nm, v in zip(self.names, self.max_velocity, strict=True) if not v > 0]
        if slow:
            raise JointLimitsError(f"max_velocity must be > 0 (inf = unlimited) for joints {slow}")

    @classmethod
    def unlimited(cls, names: Sequence[str]) -> JointLimits:
        inf = float("inf")
        n = len(names)
        return cls(tuple(names), (-inf,) * n, (inf,) * n, (inf,) * n)

    @classmethod
    def from_parameters(cls, names: Sequence[str], lower: Sequence[float], upper: Sequence[float],
                        max_velocity: Sequence[float], base: JointLimits | None = None) -> JointLimits:
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
                   pick(max_velocity, start.max_velocity, "max_velocity"))

    @classmethod
    def from_mapping(cls, names: Sequence[str], limits: Mapping[str, tuple[float, float, float]]) -> JointLimits:
        """From ``{joint: (lower, upper, max_velocity)}`` (e.g. a URDF); joints not in it are unlimited."""
        inf = float("inf")
        rows = [limits.get(n, (-inf, inf, inf)) for n in names]
        return cls(tuple(names), tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows))

    def reorder(self, names: Sequence[str]) -> JointLimits:
        index = {n: i for i, n in enumerate(self.names)}
        inf = float("inf")

        def take(values: tuple[float, ...], default: float) -> tuple[float, ...]:
            return tuple(values[index[n]] if n in index else default for n in names)

        return JointLimits(tuple(names), take(self.lower, -inf), take(self.upper, inf), take(self.max_velocity, inf))

    @property
    def any_limit(self) -> bool:
        return bool(np.isfinite(self.lower).any() or np.isfinite(self.upper).any()
                    or np.isfinite(self.max_velocity).any())


@dataclass(frozen=True)
class SafetyResult:
    """Safe positions and velocities, or ``rejected`` with the reason; ``adjustments`` lists clamps made."""

    positions: npt.NDArray[np.float64] | None
    velocities: npt.NDArray[np.float64] | None
    rejected: str = ""
    adjustments: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.rejected


class SafetyFilter:
    """Applies ``JointLimits`` to a trajectory (positions at absolute times)."""

    def __init__(self, limits: JointLimits, on_violation: str = "clamp") -> None:
        if on_violation not in VIOLATION_POLICIES:
            raise JointLimitsError(f"on_violation must be one of {VIOLATION_POLICIES}, got {on_violation!r}")
        self.limits = limits
        self.on_violation = on_violation
        self._lower = np.asarray(limits.lower, dtype=np.float64)
        self._upper = np.asarray(limits.upper, dtype=np.float64)
        self._vmax = np.asarray(limits.max_velocity, dtype=np.float64)

    def apply(self, times_ns: npt.NDArray[np.int64], positions: npt.NDArray[np.float64],
              anchor: tuple[int, npt.NDArray[np.float64]] | None = None) -> SafetyResult:
        """Check/clamp ``positions`` (T x D, joints in ``limits.names`` order).

        ``anchor`` = (time, position) the trajectory starts from (the robot at the observation), used to
        limit the speed towards the first point; points at or before the anchor time are not limited.
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
        if np.isfinite(self._vmax).any():
            prev_t, prev_p = None, None
            if anchor is not None and np.all(np.isfinite(anchor[1])):
                # a robot outside its limits is brought back from the limit, never commanded outside it
                prev_t, prev_p = anchor[0] / _NS, np.clip(np.asarray(anchor[1], dtype=np.float64),
                                                          self._lower, self._upper)
            limited: set[str] = set()
            worst_ratio = 1.0
            count = pos.shape[0] if self._speeding(times_s, pos, prev_t, prev_p) else 0
            for i in range(count):
                if prev_t is not None and prev_p is not None and times_s[i] > prev_t:
                    step = (times_s[i] - prev_t) * self._vmax
                    delta = pos[i] - prev_p
                    excess = np.abs(delta) > step * (1 + 1e-9)
                    if excess.any():
                        ratio = float(np.max(np.abs(delta[excess]) / step[excess]))
                        worst_ratio = max(worst_ratio, ratio)
                        limited.update(names[c] for c in np.flatnonzero(excess))
                        pos[i] = prev_p + np.clip(delta, -step, step)
                prev_t, prev_p = times_s[i], pos[i]
            if limited:
                msg = f"max_velocity exceeded on {sorted(limited)} (up to {worst_ratio:.2f}x the limit)"
                if self.on_violation == "reject":
                    return SafetyResult(None, None, msg)
                adjustments.append("rate-limited: " + msg)
        vel = self.velocities(times_s, pos)
        return SafetyResult(pos, vel, "", tuple(adjustments))

    def _speeding(self, times_s: npt.NDArray[np.float64], pos: npt.NDArray[np.float64], anchor_t: float | None,
                  anchor_p: npt.NDArray[np.float64] | None) -> bool:
        """Vectorised pre-check: does any step (anchor -> first point, point -> point) exceed max_velocity?"""
        t, p = times_s, pos
        if anchor_t is not None and anchor_p is not None:
            t, p = np.concatenate([[anchor_t], times_s]), np.vstack([anchor_p, pos])
        dt = np.diff(t)
        step = np.abs(np.diff(p, axis=0))
        return bool(np.any((dt[:, None] > 0) & (step > dt[:, None] * self._vmax * (1 + 1e-9))))

    def velocities(self, times_s: npt.NDArray[np.float64], pos: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Finite-difference velocities at each point, clipped to the limits; the last point's are zero."""
        if pos.shape[0] < 2:
            return np.zeros_like(pos)
        vel = np.empty_like(pos)
        vel[0] = (pos[1] - pos[0]) / (times_s[1] - times_s[0])
        vel[-1] = (pos[-1] - pos[-2]) / (times_s[-1] - times_s[-2])
        vel[1:-1] = (pos[2:] - pos[:-2]) / (times_s[2:] - times_s[:-2])[:, None]
        vel = np.clip(vel, -self._vmax, self._vmax)
        vel[-1] = 0.0
        return np.asarray(vel, dtype=np.float64)
