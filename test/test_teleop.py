"""core.teleop: targets start at the measured position, move only while armed, never faster than the limits."""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.core.errors import TeleopError
from wallx_ros.core.teleop import KeyboardJog, TeleopCommander, TeleopConfig

MS = 1_000_000


def _commander(**kw: object) -> TeleopCommander:
    cfg = dict(joint_names=("a", "b"), max_velocity=(1.0, 0.5), input_timeout_s=0.25)
    cfg.update(kw)
    return TeleopCommander(TeleopConfig(**cfg))  # type: ignore[arg-type]


def test_nothing_before_the_follower_position_then_hold_until_armed() -> None:
    cmd = _commander()
    assert cmd.step(0) is None
    cmd.set_measured([0.3, -0.2])
    cmd.set_leader([5.0, 5.0], 0)
    np.testing.assert_array_equal(cmd.step(10 * MS), [0.3, -0.2])  # not armed: holds
    cmd.set_measured([9.0, 9.0])  # later measurements do not move the target
    np.testing.assert_array_equal(cmd.step(20 * MS), [0.3, -0.2])


def test_leader_far_away_is_approached_at_the_speed_limit_and_released_deadman_holds() -> None:
    cmd = _commander()
    cmd.set_measured([0.0, 0.0])
    cmd.step(0)
    targets = []
    for k in range(1, 11):  # 10 ticks of 20 ms, leader and dead-man fresh
        now = k * 20 * MS
        cmd.set_leader([5.0, -5.0], now)
        cmd.set_deadman(True, now)
        targets.append(cmd.step(now))
    steps = np.diff(np.array([[0.0, 0.0], *targets]), axis=0)
    assert np.all(np.abs(steps[:, 0]) <= 1.0 * 0.02 + 1e-12) and np.all(np.abs(steps[:, 1]) <= 0.5 * 0.02 + 1e-12)
    np.testing.assert_allclose(targets[-1], [0.2, -0.1])
    cmd.set_deadman(False, 220 * MS)
    np.testing.assert_allclose(cmd.step(240 * MS), [0.2, -0.1])
    # a dead-man that stops refreshing (crashed driver) counts as released after the timeout
    cmd.set_deadman(True, 240 * MS)
    cmd.set_leader([5.0, -5.0], 240 * MS)
    before = cmd.step(260 * MS)
    np.testing.assert_allclose(cmd.step(600 * MS), before)


def test_joy_velocity_is_clipped_and_limits_are_respected() -> None:
    cmd = _commander(lower=(-0.1, -1.0), upper=(0.1, 1.0))
    cmd.set_measured([0.0, 0.0])
    cmd.step(0)
    for k in range(1, 50):
        now = k * 20 * MS
        cmd.set_deadman(True, now)
        cmd.set_velocity([10.0, -10.0], now)  # way above the limit
        target = cmd.step(now)
    assert target is not None
    np.testing.assert_allclose(target, [0.1, -0.49], atol=1e-9)  # a: joint limit; b: 0.5 rad/s * 0.98 s
    with pytest.raises(TeleopError, match="finite"):
        cmd.set_velocity([np.nan, 0.0], 0)


def test_keyboard_jog_arming_and_idle_disarm() -> None:
    cmd = _commander()
    cmd.set_measured([0.0, 0.0])
    keys = KeyboardJog(cmd, step=0.1, idle_timeout_s=1.0)
    cmd.step(0)
    assert "disarmed" in keys.key("w", 0)  # ignored while disarmed
    assert "ARMED" in keys.key(" ", 0) and "joint 1: b" in keys.key("]", 0)
    keys.key("up", 0)
    keys.key("w", 0)
    for k in range(1, 30):
        keys.refresh(k * 20 * MS)
        target = cmd.step(k * 20 * MS)
    np.testing.assert_allclose(target, [0.0, 0.2])  # two jogs of 0.1 on joint b, rate-limited
    keys.refresh(2_000 * MS)  # idle for longer than the timeout: disarmed
    assert not cmd.armed(2_000 * MS)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(TeleopError, match="max_velocity"):
        TeleopConfig(joint_names=("a",), max_velocity=(0.0,))
    with pytest.raises(TeleopError, match="distinct"):
        TeleopConfig(joint_names=("a", "a"), max_velocity=(1.0,))
    with pytest.raises(TeleopError, match="lower/upper"):
        TeleopConfig(joint_names=("a",), max_velocity=(1.0,), lower=(0.0,))
