"""Teleoperation, ROS-free: keyboard jogging, gamepad velocities or leader-arm mirroring -> joint targets.

One :class:`TeleopCommander` turns operator input into the follower's joint targets at a fixed rate:

* the target starts at the follower's MEASURED position (never at zeros) and moves only while the
  dead-man input is held (a gamepad button, a pedal topic, or the keyboard's arming key); released or
  stale, the target holds where it is;
* every step is rate-limited by per-joint speed limits and clipped to optional joint limits, so a
  leader arm far from the follower, a jumpy axis or a held key never makes a jump;
* inputs older than ``input_timeout_s`` count as released (a crashed gamepad driver stops the robot).

The output of :meth:`TeleopCommander.step` is both the robot command and the action a recorder stores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import TeleopError

__all__ = ["KEYBOARD_HELP", "KeyboardJog", "TeleopCommander", "TeleopConfig"]

_NS = 1_000_000_000
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TeleopConfig:
    """joint_names: follower joints, in command order. max_velocity: rad/s (or m/s) per joint, > 0.
    lower/upper: joint limits (empty: none). input_timeout_s: age after which input counts as released."""

    joint_names: tuple[str, ...]
    max_velocity: tuple[float, ...]
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    input_timeout_s: float = 0.25

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n or any(not j for j in self.joint_names):
            raise TeleopError(f"joint_names must be distinct, non-empty names: {list(self.joint_names)}")
        vel = tuple(self.max_velocity) * (n if len(self.max_velocity) == 1 else 1)
        if len(vel) != n or not all(math.isfinite(v) and v > 0 for v in vel):
            raise TeleopError(
                f"max_velocity needs one value or {n} values, all finite and > 0: {list(self.max_velocity)}")
        object.__setattr__(self, "max_velocity", vel)
        if bool(self.lower) != bool(self.upper) or (self.lower and (len(self.lower) != n or len(self.upper) != n)):
            raise TeleopError(f"lower/upper limits need {n} values each (or none)")
        if self.lower and any(lo > hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise TeleopError("a lower limit is above its upper limit")
        if not (math.isfinite(self.input_timeout_s) and self.input_timeout_s > 0):
            raise TeleopError(f"input_timeout_s must be > 0, got {self.input_timeout_s}")


class TeleopCommander:
    """See module doc. Not thread-safe: feed and step it from one thread (or under a lock)."""

    def __init__(self, config: TeleopConfig) -> None:
        self.config = config
        self._vmax = np.asarray(config.max_velocity, dtype=np.float64)
        self._lower = np.asarray(config.lower, dtype=np.float64) if config.lower else None
        self._upper = np.asarray(config.upper, dtype=np.float64) if config.upper else None
        self._timeout_ns = round(config.input_timeout_s * _NS)
        self._target: FloatArray | None = None
        self._deadman_ns: int | None = None
        self._velocity: tuple[FloatArray, int] | None = None
        self._leader: tuple[FloatArray, int] | None = None
        self._jog = np.zeros(len(config.joint_names))
        self._last_step_ns: int | None = None

    @property
    def target(self) -> FloatArray | None:
        return None if self._target is None else self._target.copy()

    def _vector(self, values: Sequence[float] | FloatArray, what: str) -> FloatArray:
        vec = np.asarray(values, dtype=np.float64)
        if vec.shape != (len(self.config.joint_names),) or not np.all(np.isfinite(vec)):
            raise TeleopError(f"{what}: need {len(self.config.joint_names)} finite values, got {vec.shape}")
        return vec

    # -- inputs ------------------------------------------------------------------------------------------
    def set_measured(self, positions: Sequence[float] | FloatArray) -> None:
        """The follower's measured joints; the first call places the target there."""
        vec = self._vector(positions, "measured joints")
        if self._target is None:
            self._target = self._clip(vec)

    def set_deadman(self, pressed: bool, now_ns: int) -> None:
        self._deadman_ns = now_ns if pressed else None

    def set_velocity(self, velocity: Sequence[float] | FloatArray, now_ns: int) -> None:
        """Gamepad: desired joint velocities (clipped to max_velocity)."""
        self._velocity = (self._vector(velocity, "velocity"), now_ns)

    def set_leader(self, positions: Sequence[float] | FloatArray, now_ns: int) -> None:
        """Leader arm: the positions the follower should mirror."""
        self._leader = (self._vector(positions, "leader joints"), now_ns)

    def jog(self, joint: int, delta: float) -> None:
        """Keyboard: move one joint by ``delta`` (applied over the next steps at the speed limit)."""
        if not 0 <= joint < len(self._jog) or not math.isfinite(delta):
            raise TeleopError(f"jog of joint {joint} by {delta} is invalid")
        self._jog[joint] += delta

    def armed(self, now_ns: int) -> bool:
        return self._deadman_ns is not None and now_ns - self._deadman_ns <= self._timeout_ns

    # -- output ------------------------------------------------------------------------------------------
    def step(self, now_ns: int) -> FloatArray | None:
        """The next target (None until the follower's position is known). Holds unless armed."""
        if self._target is None:
            return None
        dt = 0.0 if self._last_step_ns is None else max(0.0, (now_ns - self._last_step_ns) / _NS)
        self._last_step_ns = now_ns
        if not self.armed(now_ns):
            self._jog[:] = 0.0  # key presses while disarmed are not stored up
            return self._target.copy()
        limit = self._vmax * dt
        desired = np.zeros_like(self._target)
        if self._leader is not None and now_ns - self._leader[1] <= self._timeout_ns:
            desired += self._leader[0] - self._target
        if self._velocity is not None and now_ns - self._velocity[1] <= self._timeout_ns:
            desired += np.clip(self._velocity[0], -self._vmax, self._vmax) * dt
        if np.any(self._jog):
            move = np.clip(self._jog, -limit, limit)
            self._jog -= move
            desired += move
        self._target = self._clip(self._target + np.clip(desired, -limit, limit))
        return self._target.copy()

    def _clip(self, vec: FloatArray) -> FloatArray:
        if self._lower is None or self._upper is None:
            return vec
        return np.clip(vec, self._lower, self._upper)


KEYBOARD_HELP = ("keyboard teleop: SPACE arm/disarm (dead-man; disarms after idle_timeout), "
                 "[ ] previous/next joint, w/s or up/down move it, q disarm")


class KeyboardJog:
    """Terminal keys -> commander calls. Arming is a toggle (a terminal cannot see key releases) that
    times out after ``idle_timeout_s`` without a key, so a forgotten session does not stay armed."""

    def __init__(self, commander: TeleopCommander, step: float, idle_timeout_s: float = 10.0) -> None:
        if not (math.isfinite(step) and step > 0):
            raise TeleopError(f"keyboard step must be > 0, got {step}")
        self.commander = commander
        self.step_size = step
        self.joint = 0
        self._armed = False
        self._last_key_ns = 0
        self._idle_ns = round(idle_timeout_s * _NS)

    @property
    def joint_name(self) -> str:
        return self.commander.config.joint_names[self.joint]

    def key(self, key: str, now_ns: int) -> str:
        """Handle one key ('up'/'down' for arrows); returns a status line for the operator."""
        n = len(self.commander.config.joint_names)
        self._last_key_ns = now_ns
        if key == " ":
            self._armed = not self._armed
        elif key in ("q", "\x1b"):
            self._armed = False
        elif key == "]":
            self.joint = (self.joint + 1) % n
        elif key == "[":
            self.joint = (self.joint - 1) % n
        elif key in ("w", "up") and self._armed:
            self.commander.jog(self.joint, self.step_size)
        elif key in ("s", "down") and self._armed:
            self.commander.jog(self.joint, -self.step_size)
        self.refresh(now_ns)
        return f"{'ARMED' if self._armed else 'disarmed'} | joint {self.joint}: {self.joint_name}"

    def refresh(self, now_ns: int) -> None:
        """Call every tick: keeps the dead-man fresh while armed and not idle."""
        if self._armed and now_ns - self._last_key_ns > self._idle_ns:
            self._armed = False
        self.commander.set_deadman(self._armed, now_ns)
