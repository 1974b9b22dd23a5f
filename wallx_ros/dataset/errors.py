"""Exceptions of the dataset package; messages say what to change, causes are chained."""

from __future__ import annotations

__all__ = [
    "BagConfigError",
    "BagError",
    "BagReadError",
    "ConversionError",
    "DatasetError",
    "DatasetFrameError",
    "DatasetRecoveryError",
    "DatasetSpecError",
    "DatasetStateError",
    "DatasetWriteError",
    "ImageSizeChangedError",
    "MissingTopicError",
    "UnsupportedMessageTypeError",
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


class BagError(DatasetError):
    """Base class of the rosbag2 <-> dataset conversion errors."""


class BagConfigError(BagError, ValueError):
    """The topic -> feature configuration of a conversion is invalid."""


class BagReadError(BagError):
    """A rosbag2 could not be opened or read: corrupt, truncated, or not a rosbag2 at all."""


class MissingTopicError(BagError):
    """A configured topic is not in the bag (or has no messages)."""


class UnsupportedMessageTypeError(BagError):
    """A configured topic carries a message type the converter cannot turn into that feature."""


class ImageSizeChangedError(BagError):
    """A camera's image size changed within one dataset (LeRobot features have one fixed shape)."""


class ConversionError(BagError):
    """A conversion could not be completed (the output is marked incomplete)."""
