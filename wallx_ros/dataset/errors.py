"""Exceptions of the dataset package; each message says what to fix, causes are chained."""

from __future__ import annotations

__all__ = [
    "BagConfigError",
    "BagError",
    "BagReadError",
    "ConversionError",
    "DatasetError",
    "ImageSizeChangedError",
    "MissingTopicError",
    "UnsupportedMessageTypeError",
]


class DatasetError(Exception):
    """Base class of every dataset-package error."""


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
