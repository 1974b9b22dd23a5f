"""Why nothing moves: the inputs a waiting policy node lacks, in words a user can act on.

A node that is active but publishes nothing is the most confusing failure there is. This module turns what
the node knows about each input stream (its topic, how many publishers the graph shows, the last stamp and
error) into one reason per stream with the likely fix:

* no publisher on the topic -> name the topic and the remap (``-r face_view/image_raw:=/your/topic``);
* publishers but nothing received -> QoS / DDS discovery;
* stamps that look like simulated time while the node runs on wall-clock time, or the reverse ->
  ``use_sim_time``; a node on sim time that has no /clock yet -> start the simulator;
* stamps far in the future or the past of a plausible clock -> clock synchronisation (chrony / PTP);
* otherwise stale -> the stream is slower than ``max_age_s`` or stalled.

ROS-free: the node fills :class:`StreamView` from its subscriptions and the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WALL_CLOCK_MIN_S", "StreamView", "clock_hint", "explain_waiting"]

_NS = 1_000_000_000
# Stamps before 2001-09-09 (1e9 s since the epoch) are no wall-clock time of a running computer: a simulator's
# clock (seconds since it started) or a board whose clock was never set.
WALL_CLOCK_MIN_S = 1e9


@dataclass(frozen=True)
class StreamView:
    """What a node knows about one input stream. ``remap_from``: the name to remap (``-r remap_from:=...``)."""

    name: str
    topic: str
    remap_from: str
    publishers: int
    received: int
    last_error: str
    stamp_ns: int | None


def clock_hint(stamp_ns: int, now_ns: int, sim_time: bool) -> str:
    """Why a stamp ``stamp_ns`` is far from the node's clock ``now_ns``, and what to do about it."""
    stamp_s, now_s = stamp_ns / _NS, now_ns / _NS
    if sim_time and now_ns == 0:
        return ("this node runs on simulated time but no /clock has arrived: start the simulator (whatever publishes "
                "/clock), or run the node with use_sim_time:=false")
    if not sim_time and stamp_s < WALL_CLOCK_MIN_S <= now_s:
        return (f"the stamps ({stamp_s:.3f} s) look like simulated time while this node runs on wall-clock time: run "
                "it with use_sim_time:=true (or the publisher's clock was never set: synchronise it with chrony/NTP)")
    if sim_time and now_s < WALL_CLOCK_MIN_S <= stamp_s:
        return (f"the stamps ({stamp_s:.0f} s) look like wall-clock time while this node runs on simulated time "
                f"({now_s:.3f} s): run it with use_sim_time:=false, or the publisher with use_sim_time:=true")
    offset = stamp_s - now_s
    if offset > 0:
        return (f"they are {offset:.3f} s in the future of this node's clock: the publisher's clock is ahead; "
                "synchronise the clocks (chrony or PTP on both hosts)")
    return (f"they are {-offset:.3f} s behind this node's clock: the publisher's clock is behind (synchronise the "
            "clocks: chrony or PTP), it replays old data (a bag), or the link is that slow")


def explain_waiting(streams: Sequence[StreamView], now_ns: int, sim_time: bool, max_age_s: float,
                    future_tolerance_s: float = 0.005) -> list[str]:
    """One reason, with its likely fix, per stream that keeps the node from running (empty: the inputs are fine)."""
    reasons = []
    max_age_ns = round(max_age_s * _NS)
    for s in streams:
        if s.last_error:
            reasons.append(f"{s.name} ({s.topic}): the last message was refused: {s.last_error}")
        elif s.stamp_ns is None:
            if s.publishers == 0:
                reasons.append(f"{s.name}: no publisher on {s.topic}: start its driver, or remap the node's topic "
                               f"to yours with -r {s.remap_from}:=/your/topic")
            else:
                reasons.append(f"{s.name}: {s.publishers} publisher(s) on {s.topic} but no message received: check "
                               "the QoS (cameras: best-effort sensor data; joint states: reliable) and that both "
                               "sides use the same ROS_DOMAIN_ID and discovery range")
        else:
            age = now_ns - s.stamp_ns
            if age > max_age_ns or -age > round(future_tolerance_s * _NS):
                far = abs(age) > 60 * _NS or age < 0 or (sim_time and now_ns == 0)
                hint = clock_hint(s.stamp_ns, now_ns, sim_time) if far else (
                    f"the stream is slower than max_age_s {max_age_s:g} s or stalled: check its rate "
                    f"(ros2 topic hz {s.topic}) or raise max_age_s")
                when = "in the future" if age < 0 else "old"
                reasons.append(f"{s.name} ({s.topic}): latest stamp {abs(age) / _NS:.3f} s {when}: {hint}")
    return reasons
