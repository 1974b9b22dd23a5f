"""The streaming thread keeps a drift-free schedule and stops cleanly (no ROS involved)."""

from __future__ import annotations

import threading
from itertools import pairwise

import pytest

from wallx_ros.nodes.command_stream import CommandStreamer


def test_ticks_are_on_absolute_deadlines_and_stop_is_clean() -> None:
    deadlines: list[int] = []
    enough = threading.Event()

    def tick(deadline_ns: int) -> None:
        deadlines.append(deadline_ns)
        if len(deadlines) >= 10:
            enough.set()

    streamer = CommandStreamer(tick, 0.01)
    streamer.start()
    assert enough.wait(30), "the stream thread did not tick"
    streamer.stop()
    count = len(deadlines)
    assert all(b > a for a, b in pairwise(deadlines))
    # every interval is a whole number of periods (late ticks are skipped, never bunched or drifting)
    assert all((b - a) % streamer.period_ns == 0 for a, b in pairwise(deadlines))
    assert streamer.ticks == count and len(deadlines) == count  # nothing after stop()


def test_a_failing_tick_is_reported_and_the_stream_goes_on() -> None:
    warnings: list[str] = []
    calls: list[int] = []
    done = threading.Event()

    def tick(deadline_ns: int) -> None:
        calls.append(deadline_ns)
        if len(calls) == 1:
            raise RuntimeError("boom")
        done.set()

    streamer = CommandStreamer(tick, 0.005, on_warning=warnings.append)
    streamer.start()
    assert done.wait(30)
    streamer.stop()
    assert any("boom" in w for w in warnings)


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        CommandStreamer(lambda d: None, 0.0)
    with pytest.raises(ValueError):
        CommandStreamer(lambda d: None, 0.01, priority=100)
