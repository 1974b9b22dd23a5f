"""Exceptions raised by the ROS-free simulation core. Each message says what to fix."""

from __future__ import annotations

__all__ = ["RenderError", "SceneError", "SimConfigError", "SimError"]


class SimError(Exception):
    """Base class of every simulation error."""


class SimConfigError(SimError):
    """A simulation setting is out of range or inconsistent with the scene."""


class SceneError(SimError):
    """The MuJoCo scene cannot be found, loaded or mapped onto the robot's joints and cameras."""


class RenderError(SimError):
    """Off-screen rendering failed (usually no OpenGL backend: install libosmesa6, set MUJOCO_GL=osmesa)."""
