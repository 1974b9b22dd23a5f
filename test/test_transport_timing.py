"""Transport delay per stream and clock-offset detection (ROS-free core)."""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.core.errors import TransportTimingError
from wallx_ros.core.transport_timing import (
    LEVEL_ERROR,
    LEVEL_OK,
    LEVEL_WARN,
    ClockStatus,
    TransportDelayMonitor,
    TransportTimingConfig,
)

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def feed(monitor: TransportDelayMonitor, stream: str, delays_ms: list[float], period_ms: float = 33.0,
         clock_offset_ms: float = 0.0, start_ns: int = T0) -> None:
    """Messages stamped on the robot clock (this clock minus ``clock_offset_ms``), received after a delay."""
    for i, d in enumerate(delays_ms):
        true_time = start_ns + round(i * period_ms * MS)
        stamp = true_time - round(clock_offset_ms * MS)
        monitor.record(stream, stamp, true_time + round(d * MS))


def test_synchronised_clocks_give_the_real_delays() -> None:
    rng = np.random.default_rng(0)
    mon = TransportDelayMonitor(["face_view", "joint_states"])
    feed(mon, "face_view", list(30 + rng.uniform(0, 10, 60)))      # big frames: 30-40 ms
    feed(mon, "joint_states", list(5 + rng.uniform(0, 2, 100)), period_ms=20)
    rep = mon.report()
    assert rep.status is ClockStatus.OK and rep.level == LEVEL_OK and rep.clocks_ok
    assert rep.one_way_delay_s == pytest.approx(0.006, abs=0.001)   # the small-message path
    assert rep.observation_delay_s == pytest.approx(0.035, abs=0.002)  # the slowest stream
    by_name = {s.stream: s for s in rep.streams}
    assert 0.030 <= by_name["face_view"].min_s < by_name["face_view"].p50_s < by_name["face_view"].max_s <= 0.040
    assert by_name["joint_states"].count == 100
    values = rep.as_dict()
    assert values["clock_status"] == "ok" and values["one_way_delay_ms"].startswith("6.")
    assert "transport_delay.face_view" in values


def test_robot_clock_ahead_is_an_error_with_its_lower_bound() -> None:
    mon = TransportDelayMonitor(["cam", "joints"])
    # true delay 4 ms, robot clock 250 ms ahead: stamps 246 ms in the future on arrival
    feed(mon, "cam", [4.0] * 20, clock_offset_ms=-250)
    feed(mon, "joints", [2.0] * 20, clock_offset_ms=-250)
    rep = mon.report()
    assert rep.status is ClockStatus.AHEAD and rep.level == LEVEL_ERROR and not rep.clocks_ok
    assert rep.clock_offset_bound_s == pytest.approx(0.248, abs=1e-6)
    assert "ahead" in rep.message and "chrony" in rep.message
    assert rep.one_way_delay_s is None  # no delay figure from untrustworthy stamps


def test_small_future_stamps_within_sync_precision_are_tolerated() -> None:
    mon = TransportDelayMonitor(["cam"], TransportTimingConfig(future_tolerance_s=0.005))
    feed(mon, "cam", [-3.0, 1.0, 2.0, 0.5, -1.0, 2.5])  # chrony-grade offset of a few ms
    assert mon.report().status is ClockStatus.OK


def test_robot_clock_behind_or_dead_slow_link_is_an_error() -> None:
    mon = TransportDelayMonitor(["cam", "joints"], TransportTimingConfig(max_plausible_delay_s=0.5))
    feed(mon, "cam", [5.0] * 10, clock_offset_ms=2000)  # robot 2 s behind
    feed(mon, "joints", [1.0] * 10, clock_offset_ms=2000)
    rep = mon.report()
    assert rep.status is ClockStatus.BEHIND_OR_SLOW and rep.level == LEVEL_ERROR and not rep.clocks_ok
    assert rep.clock_offset_bound_s == pytest.approx(2.001, abs=1e-6)


def test_one_slow_stream_is_a_warning_not_a_clock_problem() -> None:
    mon = TransportDelayMonitor(["cam", "joints"], TransportTimingConfig(max_plausible_delay_s=0.5))
    feed(mon, "cam", [800.0] * 10)
    feed(mon, "joints", [2.0] * 10)
    rep = mon.report()
    assert rep.status is ClockStatus.OK and rep.level == LEVEL_WARN and rep.clocks_ok
    assert rep.message.startswith("cam:")


def test_unknown_until_a_stream_has_enough_recent_messages() -> None:
    mon = TransportDelayMonitor(["cam", "joints"], TransportTimingConfig(min_samples=5))
    feed(mon, "cam", [-900.0] * 4)
    rep = mon.report()
    assert rep.status is ClockStatus.UNKNOWN and rep.clocks_ok and "waiting" in rep.message
    feed(mon, "cam", [-900.0] * 5, start_ns=T0 + 200 * MS)  # one stream is enough to see future stamps
    assert mon.report().status is ClockStatus.AHEAD


def test_a_stalled_stream_does_not_pin_the_figures() -> None:
    """Over a lossy link one camera stops arriving: what it delivered long ago must not count."""
    mon = TransportDelayMonitor(["cam", "joints"], TransportTimingConfig(horizon_s=2.0))
    feed(mon, "cam", [5.0] * 50)                                           # before the link got slow
    feed(mon, "joints", [45.0] * 100, period_ms=20, start_ns=T0 + 10_000 * MS)  # 10 s later, 45 ms delay
    rep = mon.report()
    assert [s.stream for s in rep.streams] == ["joints"]
    assert rep.one_way_delay_s == pytest.approx(0.045)
    assert mon.report(now_ns=T0 + 60_000 * MS).status is ClockStatus.UNKNOWN  # nothing recent at all


def test_window_forgets_old_delays_and_reset_clears() -> None:
    mon = TransportDelayMonitor(["cam"], TransportTimingConfig(window=10, min_samples=3))
    feed(mon, "cam", [-500.0] * 10)           # clock was ahead...
    assert mon.report().status is ClockStatus.AHEAD
    feed(mon, "cam", [3.0] * 10, start_ns=T0 + 400 * MS)  # ... then chrony fixed it
    assert mon.report().status is ClockStatus.OK
    mon.reset()
    assert mon.report().status is ClockStatus.UNKNOWN


def test_unstamped_messages_are_ignored_and_bad_use_is_refused() -> None:
    mon = TransportDelayMonitor(["cam"])
    mon.record("cam", 0, T0)
    assert mon.stream_delays() == ()
    with pytest.raises(TransportTimingError, match="unknown stream"):
        mon.record("other", T0, T0)
    with pytest.raises(TransportTimingError, match="distinct"):
        TransportDelayMonitor(["a", "a"])
    with pytest.raises(TransportTimingError, match="future_tolerance_s"):
        TransportTimingConfig(future_tolerance_s=-1)
    with pytest.raises(TransportTimingError, match="max_plausible_delay_s"):
        TransportTimingConfig(max_plausible_delay_s=float("nan"))
    with pytest.raises(TransportTimingError, match="horizon_s"):
        TransportTimingConfig(horizon_s=0)
    with pytest.raises(TransportTimingError, match="min_samples"):
        TransportTimingConfig(window=3, min_samples=4)


def test_report_becomes_a_diagnostic_status() -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from wallx_ros.nodes.transport_diagnostics import transport_status

    mon = TransportDelayMonitor(["cam"])
    feed(mon, "cam", [-300.0] * 10)
    status = transport_status(mon.report(), "/wallx_policy: transport")
    assert status.level == DiagnosticStatus.ERROR and "ahead" in status.message
    values = {kv.key: kv.value for kv in status.values}
    assert values["clock_status"] == "robot_clock_ahead" and values["clock_offset_bound_ms"] == "300.00"
    mon.reset()
    feed(mon, "cam", [3.0] * 10)
    status = transport_status(mon.report(), "x")
    assert status.level == DiagnosticStatus.OK and {kv.key: kv.value for kv in status.values}["one_way_delay_ms"] == \
        "3.00"
