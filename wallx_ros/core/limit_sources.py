"""Where the policy node's joint limits come from, and whether they bound every motion.

Each quantity (lower, upper, max_velocity, max_acceleration) of each action joint is taken from the first
source that has it, in order:

1. **parameters** (``position_lower``, ``position_upper``, ``max_velocity``, ``max_acceleration``): a list given
   as a parameter decides that quantity for every joint (one value for all, or one per joint; ``.inf`` = no
   limit, which then counts as missing);
2. **the URDF** (``urdf_path`` / ``robot_description``): ``<limit lower upper velocity [acceleration]>`` of the
   joint, where finite (a continuous joint has no position limit);
3. **the checkpoint's action statistics** (:func:`stats_limits`): what the policy was trained on.

Motion is bounded when every action joint has a finite lower AND upper position limit and a finite
max_velocity (:meth:`JointLimits.unbounded` says what is missing); max_acceleration is optional.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.errors import JointLimitsError
from wallx_ros.core.safety import JointLimits

__all__ = ["QUANTITIES", "SOURCES", "ResolvedLimits", "resolve_limits", "stats_limits"]

QUANTITIES = ("lower", "upper", "max_velocity", "max_acceleration")
SOURCES = ("parameter", "URDF", "checkpoint stats")
_PARAMETER_OF = {"lower": "position_lower", "upper": "position_upper", "max_velocity": "max_velocity",
                 "max_acceleration": "max_acceleration"}


def stats_limits(mapping: ActionMapping, minimum: Sequence[float], maximum: Sequence[float], chunk_s: float,
                 margin: float) -> JointLimits | None:
    """Limits implied by the training data's action statistics (``min``/``max`` per action column, model units).

    * position range: ``[min - margin * (max - min), max + margin * (max - min)]`` - every action the policy
      was trained on, widened by ``margin`` of the range on each side;
    * max_velocity: the widened range divided by the duration of one chunk (``chunk_size / fps``). Within one
      training chunk a joint moves by at most its range, so no training chunk's AVERAGE speed exceeded this;
      per step it is a bound the data can justify, not a measured peak speed (give ``max_velocity`` for the
      robot's own limit: it takes precedence).
    * no acceleration bound (the statistics carry no time information).

    Gripper joints are converted to robot units (``offset + scale * model``). With ``action_type`` delta the
    statistics describe offsets, not positions: nothing is derived (None). A joint that never moved in the
    data (``max == min``) is held where it was.
    """
    if mapping.action_type != "absolute":
        return None
    low = np.asarray(minimum, dtype=np.float64)
    high = np.asarray(maximum, dtype=np.float64)
    n = len(mapping.action_names)
    if low.shape != (n,) or high.shape != (n,):
        raise JointLimitsError(f"action statistics have {low.shape} / {high.shape} values for {n} action joints")
    if not (math.isfinite(chunk_s) and chunk_s > 0 and math.isfinite(margin) and margin >= 0):
        raise JointLimitsError(f"chunk duration {chunk_s} s and margin {margin} must be finite, > 0 and >= 0")
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low <= high)):
        return None
    width = high - low
    lower, upper = low - margin * width, high + margin * width
    speed = (upper - lower) / chunk_s
    for j, name in enumerate(mapping.action_names):
        if name in mapping.gripper_joints:
            a, b = mapping.gripper_offset + mapping.gripper_scale * lower[j], \
                mapping.gripper_offset + mapping.gripper_scale * upper[j]
            lower[j], upper[j] = min(a, b), max(a, b)
            speed[j] *= abs(mapping.gripper_scale)
    speed = np.where(speed > 0, speed, 1e-9)  # a joint the data never moved: held
    return JointLimits(mapping.action_names, tuple(lower.tolist()), tuple(upper.tolist()), tuple(speed.tolist()))


@dataclass(frozen=True)
class ResolvedLimits:
    """The limits to enforce and the source of every value (``sources[quantity][joint]``, "" = none)."""

    limits: JointLimits
    sources: Mapping[str, Mapping[str, str]]

    def summary(self) -> str:
        """One line: per quantity, how many joints got their value from which source."""
        parts = []
        for quantity in QUANTITIES:
            counts: dict[str, int] = {}
            for source in self.sources[quantity].values():
                counts[source or "none"] = counts.get(source or "none", 0) + 1
            parts.append(f"{quantity}: " + ", ".join(f"{src} {k}" for src, k in counts.items()))
        return "; ".join(parts)

    def missing(self) -> str:
        """'' when every joint is bounded, else what is missing and where it can come from."""
        unbounded = self.limits.unbounded()
        if not unbounded:
            return ""
        return "; ".join(f"no {what} for {list(joints)}" for what, joints in unbounded.items())


def _pick(values: Sequence[float], names: Sequence[str], parameter: str) -> tuple[float, ...] | None:
    if len(values) == 0:
        return None
    if len(values) == 1:
        return (float(values[0]),) * len(names)
    if len(values) != len(names):
        raise JointLimitsError(f"parameter {parameter} has {len(values)} values: give 0, 1 or {len(names)} "
                               f"(one per joint of {list(names)})")
    return tuple(float(v) for v in values)


def resolve_limits(names: Sequence[str], parameters: Mapping[str, Sequence[float]],
                   urdf: JointLimits | None = None, stats: JointLimits | None = None) -> ResolvedLimits:
    """Merge the sources (module docstring). ``parameters`` maps quantity -> the parameter's list (empty: not
    given); ``urdf`` / ``stats`` are limits for (some of) ``names``, ``inf`` where they have none."""
    names = tuple(names)
    inf = math.inf
    defaults = {"lower": -inf, "upper": inf, "max_velocity": inf, "max_acceleration": inf}
    values: dict[str, tuple[float, ...]] = {}
    sources: dict[str, dict[str, str]] = {}
    fallbacks = [(src, lim.reorder(names)) for src, lim in (("URDF", urdf), ("checkpoint stats", stats))
                 if lim is not None]
    for quantity in QUANTITIES:
        given = _pick(parameters.get(quantity, ()), names, _PARAMETER_OF[quantity])
        if given is not None:
            values[quantity] = given
            sources[quantity] = {n: "parameter" if math.isfinite(v) else "" for n, v in zip(names, given, strict=True)}
            continue
        column: list[float] = []
        origin: dict[str, str] = {}
        for j, name in enumerate(names):
            value, source = defaults[quantity], ""
            for src, lim in fallbacks:
                candidate = float(getattr(lim, quantity)[j])
                if math.isfinite(candidate):
                    value, source = candidate, src
                    break
            column.append(value)
            origin[name] = source
        values[quantity] = tuple(column)
        sources[quantity] = origin
    lower, upper = np.asarray(values["lower"]), np.asarray(values["upper"])
    crossed = [n for n, lo, hi in zip(names, lower, upper, strict=True) if lo > hi]
    if crossed:
        detail = ", ".join(f"{n} [{values['lower'][names.index(n)]:g} ({sources['lower'][n] or 'none'}), "
                           f"{values['upper'][names.index(n)]:g} ({sources['upper'][n] or 'none'})]" for n in crossed)
        raise JointLimitsError(f"lower > upper after merging the limit sources for {detail}: give both "
                               "position_lower and position_upper")
    limits = JointLimits(names, values["lower"], values["upper"], values["max_velocity"], values["max_acceleration"])
    return ResolvedLimits(limits, sources)
