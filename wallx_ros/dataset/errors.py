"""Exceptions of the dataset package; messages say what to change, causes are chained."""

from __future__ import annotations

__all__ = [
    "DatasetError",
    "DatasetFrameError",
    "DatasetRecoveryError",
    "DatasetSpecError",
    "DatasetStateError",
    "DatasetWriteError",
]


class DatasetError(Exception):
    """Base class of every dataset-package error."""


class DatasetSpecError(DatasetError, ValueError):
    """The dataset settings are invalid, or do not match the dataset already on disk."""


class DatasetFrameError(DatasetError, ValueError):
    """One frame does not fit the dataset's features (missing camera, shape, dtype, non-finite value)."""


class DatasetStateError(DatasetError):
    """A call that does not fit the writer's state (e.g. a frame while no episode is open)."""


class DatasetWriteError(DatasetError):
    """Writing failed (disk full, I/O error, video encoding). Episodes saved before are intact."""


class DatasetRecoveryError(DatasetError):
    """A dataset folder is in a state that cannot be repaired automatically; nothing was changed."""
