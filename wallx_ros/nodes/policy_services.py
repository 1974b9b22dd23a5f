"""The policy node's operator services (``~/pause``, ``~/resume``, ``~/estop``) as decisions, ROS-free.

Each function asks ``PolicyControl`` for the transition and returns the reply: whether it happened, the
message for the caller, and the hold to publish (pause and e-stop stop the robot where it is commanded).
"""

from __future__ import annotations

from dataclasses import dataclass

from wallx_ros.core.policy_control import ControlMode, PolicyControl, TrajectoryCommand

__all__ = ["ServiceReply", "estop", "pause", "resume"]


@dataclass(frozen=True)
class ServiceReply:
    """``hold``: publish it (None: nothing to send); ``log``: say the message in the node's log (WARN)."""

    success: bool
    message: str
    hold: TrajectoryCommand | None = None
    log: bool = False


def pause(control: PolicyControl | None, now_ns: int) -> ServiceReply:
    if control is None or control.mode is ControlMode.INACTIVE:
        return ServiceReply(False, "node is not active")
    if control.mode is ControlMode.ESTOPPED:
        return ServiceReply(False, "e-stop is engaged")
    return ServiceReply(True, "paused: holding position, inference stopped", control.pause(now_ns))


def resume(control: PolicyControl | None, now_ns: int) -> ServiceReply:
    """Success means: take the next observation whatever its stamp."""
    if control is None:
        return ServiceReply(False, "node is not configured")
    refusal = control.resume(now_ns)
    return ServiceReply(not refusal, refusal or "resumed")


def estop(control: PolicyControl | None, engage: bool, now_ns: int) -> ServiceReply:
    """``engage`` true latches the e-stop (and holds); false releases it into pause."""
    if control is None:
        return ServiceReply(False, "node is not configured")
    if engage:
        return ServiceReply(True, "e-stop engaged: holding; release with data false", control.estop(now_ns), log=True)
    refusal = control.release_estop(now_ns)
    return ServiceReply(not refusal, refusal or "e-stop released: paused, call ~/resume", log=True)
