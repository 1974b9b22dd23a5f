"""What ros2_control's joint_trajectory_controller (JTC) accepts on its ``~/joint_trajectory`` topic.

A ROS-free restatement of ``JointTrajectoryController::validate_trajectory_msg`` (ros-controls/
ros2_controllers, ``joint_trajectory_controller/src/joint_trajectory_controller.cpp``, identical on the
jazzy and kilted branches, read 2026-11) so that the policy node can check every message before it
publishes it, and an embedded simulator can reject exactly what a real controller would reject.

API (small on purpose; the simulator of issue 6 reuses it)::

    problems = validate(joint_names, points, controller_joints, now_ns, header_stamp_ns)
    if problems: ...            # JTC would drop this message; each string says why
    unsafe = hazards(joint_names, points)   # accepted by JTC but must never reach hardware

``points`` are anything with ``positions``, ``velocities``, ``accelerations``, ``effort`` (sequences of
float) and ``time_from_start`` given as integer nanoseconds or as an object with ``sec``/``nanosec``
(a ``trajectory_msgs/JointTrajectoryPoint`` works as is; :class:`Point` is a plain-data stand-in).
``header_stamp_ns`` is ``header.stamp`` in ns (``sec * 10**9 + nanosec``); 0 means "start now".

JTC's rules, in its own order (defaults of its parameters shown in :class:`JtcOptions`):

1. ``allow_partial_joints_goal`` false: ``len(joint_names)`` must equal the controller's joint count;
2. ``joint_names`` non-empty;  3. at least one point;  4. every name is a controller joint;
5. ``allow_nonzero_velocity_at_trajectory_end`` false: each velocity of the LAST point is within
   float32 epsilon of zero;
6. a non-zero stamp whose last point (stamp + last time_from_start) lies before ``now`` is dropped
   (a negative stamp makes rclcpp::Time throw: reported as a problem here);
7. ``time_from_start`` strictly increasing (the first point may be at 0);
8. per point: positions size == joint count (velocities / accelerations: empty or that size); with
   ``allow_integration_in_goal_trajectories`` positions may be empty too, but not all three;
9. no effort entries unless the controller has an effort command interface.

JTC does NOT check duplicate joint names or NaN/Inf values: :func:`hazards` does. Nor does it splice:
a valid message replaces the running trajectory at the next control cycle (jazzy/kilted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = ["JtcOptions", "Point", "TrajectoryPointLike", "hazards", "time_from_start_ns", "validate"]

_FLOAT32_EPS = float(np.finfo(np.float32).eps)  # std::numeric_limits<float>::epsilon()


class _DurationLike(Protocol):
    sec: int
    nanosec: int


class TrajectoryPointLike(Protocol):
    """A ``trajectory_msgs/JointTrajectoryPoint`` or a :class:`Point`."""

    @property
    def positions(self) -> Sequence[float]: ...

    @property
    def velocities(self) -> Sequence[float]: ...

    @property
    def accelerations(self) -> Sequence[float]: ...

    @property
    def effort(self) -> Sequence[float]: ...

    @property
    def time_from_start(self) -> int | _DurationLike: ...


@dataclass(frozen=True)
class Point:
    """Plain-data trajectory point; ``time_from_start`` in nanoseconds."""

    positions: Sequence[float]
    time_from_start: int
    velocities: Sequence[float] = field(default_factory=tuple)
    accelerations: Sequence[float] = field(default_factory=tuple)
    effort: Sequence[float] = field(default_factory=tuple)


@dataclass(frozen=True)
class JtcOptions:
    """The JTC parameters that change what it accepts (defaults = JTC's defaults on jazzy/kilted)."""

    allow_partial_joints_goal: bool = False
    allow_nonzero_velocity_at_trajectory_end: bool = False
    allow_integration_in_goal_trajectories: bool = False
    has_effort_command_interface: bool = False


def time_from_start_ns(point: TrajectoryPointLike) -> int:
    """``point.time_from_start`` in nanoseconds (int, or a builtin_interfaces/Duration-like object)."""
    tfs = point.time_from_start
    if isinstance(tfs, int | np.integer):
        return int(tfs)
    return int(tfs.sec) * 1_000_000_000 + int(tfs.nanosec)


def _field_problem(count: int, values: Sequence[float], name: str, index: int, allow_empty: bool) -> str | None:
    if allow_empty and len(values) == 0:
        return None
    if len(values) != count:
        return f"point {index}: {len(values)} {name} for {count} joint names (JTC needs one per joint)"
    return None


def validate(
    joint_names: Sequence[str],
    points: Sequence[TrajectoryPointLike],
    controller_joints: Sequence[str],
    now_ns: int,
    header_stamp_ns: int,
    options: JtcOptions | None = None,
) -> list[str]:
    """Reasons JTC would reject this trajectory message; an empty list means it is accepted.

    ``now_ns`` is the controller's clock (``get_node()->now()``) when the message arrives.
    All problems are listed (JTC stops at the first one, in the order used here).
    """
    opt = options or JtcOptions()
    problems: list[str] = []
    n = len(joint_names)
    if not opt.allow_partial_joints_goal and n != len(controller_joints):
        problems.append(
            f"{n} joint names but the controller has {len(controller_joints)} joints "
            "(allow_partial_joints_goal is false: send every controller joint)"
        )
    if n == 0:
        problems.append("joint_names is empty")
    if not points:
        problems.append("the trajectory has no points")
    known = set(controller_joints)
    unknown = [name for name in joint_names if name not in known]
    if unknown:
        problems.append(f"joints {unknown} are not controller joints {list(controller_joints)}")
    if points and not opt.allow_nonzero_velocity_at_trajectory_end:
        last_vel = list(points[-1].velocities)
        moving = [joint_names[i] if i < n else f"#{i}" for i, v in enumerate(last_vel) if not abs(v) <= _FLOAT32_EPS]
        if moving:
            problems.append(
                f"last point has non-zero velocity for {moving} "
                "(allow_nonzero_velocity_at_trajectory_end is false: end with zero velocity)"
            )
    if header_stamp_ns < 0:
        problems.append(f"header.stamp is negative ({header_stamp_ns} ns): rclcpp::Time throws")
    elif header_stamp_ns != 0 and points:
        end_ns = header_stamp_ns + time_from_start_ns(points[-1])
        if end_ns < now_ns:
            problems.append(
                f"trajectory ends in the past: stamp + last time_from_start = {end_ns * 1e-9:.6f} s "
                f"< now {now_ns * 1e-9:.6f} s"
            )
    previous: int | None = None
    for i, point in enumerate(points):
        t = time_from_start_ns(point)
        if previous is not None and t <= previous:
            problems.append(
                f"time_from_start is not strictly increasing at point {i} "
                f"({previous * 1e-9:.9f} s then {t * 1e-9:.9f} s)"
            )
        previous = t
        if opt.allow_integration_in_goal_trajectories:
            if not point.positions and not point.velocities and not point.accelerations:
                problems.append(f"point {i} has no positions, velocities or accelerations")
            fields = [("positions", point.positions), ("velocities", point.velocities),
                      ("accelerations", point.accelerations)]
            problems.extend(p for name, values in fields if values
                            if (p := _field_problem(n, values, name, i, False)) is not None)
        else:
            checks = [("positions", point.positions, False), ("velocities", point.velocities, True),
                      ("accelerations", point.accelerations, True)]
            problems.extend(p for name, values, empty_ok in checks
                            if (p := _field_problem(n, values, name, i, empty_ok)) is not None)
        if not opt.has_effort_command_interface and len(point.effort) > 0:
            problems.append(f"point {i} has effort entries: only controllers with an effort command interface "
                            "take them")
    return problems


def hazards(joint_names: Sequence[str], points: Sequence[TrajectoryPointLike]) -> list[str]:
    """What JTC accepts but must never reach hardware: repeated joint names, NaN or Inf values."""
    problems: list[str] = []
    if len(set(joint_names)) != len(joint_names):
        dupes = sorted({name for name in joint_names if list(joint_names).count(name) > 1})
        problems.append(f"joint names repeat: {dupes}")
    for name in ("positions", "velocities", "accelerations", "effort"):
        rows = [np.asarray(getattr(point, name), dtype=np.float64) for point in points]
        if not rows or np.isfinite(np.concatenate([r.reshape(-1) for r in rows])).all():
            continue
        for i, values in enumerate(rows):
            if values.size and not np.all(np.isfinite(values)):
                bad = [joint_names[j] if j < len(joint_names) else f"#{j}"
                       for j in np.flatnonzero(~np.isfinite(values))]
                problems.append(f"point {i}: non-finite {name} for {bad}")
    return problems
