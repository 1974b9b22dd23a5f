"""Exceptions of the LeRobot layer; messages say what to change. Callers above translate them into their own
(``wallx_ros.policy`` raises a ``CheckpointError`` with the same message)."""

from __future__ import annotations

__all__ = ["BackboneWeightsMissingError", "LeRobotError"]


class LeRobotError(Exception):
    """Base class of every error of ``wallx_ros.lerobot``."""


class BackboneWeightsMissingError(LeRobotError):
    """A WALL-OSS backbone folder lacks the ``model.safetensors`` the installed LeRobot line requires."""
