"""Exceptions raised by the ROS-free core. Each carries a message that says what to fix."""

from __future__ import annotations

__all__ = [
    "AlignmentConfigError",
    "CoreError",
    "ImageDecodeError",
    "JointMappingError",
    "NonMonotonicStampError",
    "RobotMappingError",
]


class CoreError(Exception):
    """Base class of every core error."""


class ImageDecodeError(CoreError):
    """An image message could not be turned into an RGB array (encoding, size or payload)."""


class JointMappingError(CoreError):
    """Joint names of a message do not provide what the model needs (missing, duplicate, non-finite)."""


class RobotMappingError(CoreError):
    """A robot <-> model mapping file is missing, malformed or inconsistent."""


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
