"""Exceptions of the policy package; messages say what to change, causes are chained."""

from __future__ import annotations

__all__ = [
    "BackendConfigError",
    "CheckpointConversionError",
    "CheckpointError",
    "InferenceError",
    "PolicyError",
    "RandomWeightsError",
    "TextRequestError",
]


class PolicyError(Exception):
    """Base class of every policy-package error."""


class BackendConfigError(PolicyError, ValueError):
    """A backend setting is invalid."""


class CheckpointError(PolicyError):
    """A checkpoint folder is missing files, unsafe to load, or in a layout we do not know."""


class CheckpointConversionError(CheckpointError):
    """A policy folder cannot be converted between LeRobot lines (unknown layout, bad destination)."""


class RandomWeightsError(CheckpointError):
    """The model would run with random (untrained) weights and nobody said that is intended."""


class InferenceError(PolicyError):
    """One prediction failed (bad observation for this model, numerical failure, out of memory)."""


class TextRequestError(PolicyError, ValueError):
    """A request for text (a question, a token limit) cannot be served as given; the message says why."""
