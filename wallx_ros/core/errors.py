"""Exceptions raised by the ROS-free core. Each carries a message that says what to fix."""

from __future__ import annotations

__all__ = [
    "CoreError",
    "ImageDecodeError",
    "ImageEncodeError",
    "JointMappingError",
    "RobotMappingError",
    "TransportTimingError",
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
