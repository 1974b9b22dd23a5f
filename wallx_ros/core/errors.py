"""Exceptions raised by the ROS-free core. Each carries a message that says what to fix."""

from __future__ import annotations

__all__ = [
    "ActionMappingError",
    "AlignmentConfigError",
    "ControlConfigError",
    "CoreError",
    "ImageDecodeError",
    "ImageEncodeError",
    "JointLimitsError",
    "JointMappingError",
    "NonMonotonicStampError",
    "ParameterError",
    "RobotMappingError",
    "StreamSyncError",
    "TeleopError",
    "TransportTimingError",
    "UrdfError",
]


class CoreError(Exception):
    """Base class of every core error."""


class ImageDecodeError(CoreError):
    """An image message could not be turned into an RGB array (encoding, size or payload)."""


class JointMappingError(CoreError):
    """Joint names of a message do not provide what the model needs (missing, duplicate, non-finite)."""


class RobotMappingError(CoreError):
    """A robot <-> model mapping file is missing, malformed or inconsistent."""


class TransportTimingError(CoreError):
    """Transport-delay / clock-offset monitoring is configured or used wrongly."""


class ImageEncodeError(CoreError):
    """An RGB frame could not be encoded (wrong shape or dtype, bad quality setting)."""


class AlignmentConfigError(CoreError, ValueError):
    """Frame-alignment settings are invalid (fps, stream names, max ages, rule)."""


class NonMonotonicStampError(CoreError):
    """A stream's header stamps went backwards or repeated; the offending sample was not used.

    ``stream``, ``stamp_ns`` and ``previous_ns`` say where: a converter can report them and go on.
    """

    def __init__(self, stream: str, stamp_ns: int, previous_ns: int) -> None:
        self.stream = stream
        self.stamp_ns = stamp_ns
        self.previous_ns = previous_ns
        what = "repeats" if stamp_ns == previous_ns else "goes backwards from"
        super().__init__(
            f"stream {stream!r}: header stamp {stamp_ns} ns {what} the previous sample's {previous_ns} ns "
            f"(by {(previous_ns - stamp_ns) / 1e6:.3f} ms); stamps must strictly increase per stream. "
            "Check the publisher's clock (use_sim_time, a reset simulation, a replayed bag) or its header.stamp"
        )


class TeleopError(CoreError, ValueError):
    """Invalid teleoperation settings or input (joint names, speed limits, non-finite values)."""


class StreamSyncError(CoreError):
    """Stream buffering / synchronisation is configured or used wrongly."""


class ActionMappingError(CoreError):
    """Model action dimensions cannot be mapped to robot joints as configured (names, delta, gripper)."""


class JointLimitsError(CoreError):
    """Joint position / velocity limits are malformed (wrong length, lower > upper, non-positive speed)."""


class UrdfError(CoreError):
    """A URDF file or robot_description string cannot be read or lacks what is needed."""


class ControlConfigError(CoreError):
    """A chunk-execution / control setting is invalid (horizon, blending, rates, latency)."""


class ParameterError(CoreError):
    """A node parameter given on the command line, in a params file or by a launch file is unknown, of the wrong
    type or out of range (the message is the one line the node prints before it exits)."""
