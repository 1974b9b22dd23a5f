"""Pick the joints a model needs out of a ``JointState``-like message, by NAME, never by position.

A missing joint blocks inference (never a zero fill), duplicates and non-finite values are rejected:
a robot publishes joints in any order and often more of them than the model uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import JointMappingError

__all__ = ["JointSelector"]


class JointSelector:
    """Select ``wanted`` joint names, in that order, from (names, values) pairs."""

    def __init__(self, wanted: Sequence[str]) -> None:
        if not wanted:
            raise JointMappingError("no joint names configured: set the model's state joint names")
        if len(set(wanted)) != len(wanted):
            dupes = sorted({n for n in wanted if list(wanted).count(n) > 1})
            raise JointMappingError(f"configured joint names repeat: {dupes}")
        self.wanted: tuple[str, ...] = tuple(wanted)
        self._cache_key: tuple[str, ...] | None = None
        self._cache_index: npt.NDArray[np.intp] | None = None

    def select(
        self, names: Sequence[str], values: Sequence[float] | npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.float64]:
        """Return the wanted joints' values as float64, in configured order."""
        if len(names) != len(values):
            raise JointMappingError(f"{len(names)} joint names but {len(values)} positions")
        key = tuple(names)
        if key != self._cache_key:
            self._cache_index = self._index_for(key)
            self._cache_key = key
        assert self._cache_index is not None
        picked = np.asarray(values, dtype=np.float64)[self._cache_index]
        if not np.all(np.isfinite(picked)):
            bad = [self.wanted[i] for i in np.flatnonzero(~np.isfinite(picked))]
            raise JointMappingError(f"non-finite position for joints {bad}")
        return picked

    def _index_for(self, names: tuple[str, ...]) -> npt.NDArray[np.intp]:
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise JointMappingError(f"joint names repeat in the message: {dupes}")
        where = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.wanted if n not in where]
        if missing:
            raise JointMappingError(f"missing required joints {missing} (message has {list(names)})")
        return np.array([where[n] for n in self.wanted], dtype=np.intp)
