"""The velocity a published trajectory arrives at a time with, from its points alone: what a chunk that takes it
over from that time on accelerates from. Written independently of ``Plan.velocity_before``, which the
boundary tests check with it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_NS = 1_000_000_000


def arriving_velocity(times_ns: npt.NDArray[np.int64], positions: npt.NDArray[np.float64],
                      entry: npt.NDArray[np.float64], t_ns: int) -> npt.NDArray[np.float64]:
    """Points at integer ns (``positions``: points x joints): the slope of the segment that contains or ends at
    ``t_ns``; at or before the first point ``entry`` (the step into it); after the last point rest."""
    k = int(np.searchsorted(times_ns, t_ns, side="left")) - 1
    if k < 0:
        return np.asarray(entry, dtype=np.float64)
    if k >= len(times_ns) - 1:
        return np.zeros(positions.shape[1])
    return np.asarray((positions[k + 1] - positions[k]) / ((times_ns[k + 1] - times_ns[k]) / _NS), np.float64)
