"""Exceptions raised by the ROS-free core. Each carries a message that says what to fix."""

from __future__ import annotations

__all__ = [
    "ActionMappingError",
    "ControlConfigError",
    "CoreError",
    "ImageDecodeError",
    "JointLimitsError",
    "JointMappingError",
    "RobotMappingError",
    "StreamSyncError",
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
