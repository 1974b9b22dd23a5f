"""Plain data types that flow through the system: one observation in, one action chunk out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["ActionChunk", "Observation"]


@dataclass(frozen=True)
class Observation:
    """Everything the model sees at one instant.

    images: camera key (e.g. ``face_view``) -> RGB uint8 array of shape (H, W, 3).
    state: robot state in the model's ``observation.state`` order (float32, shape (S,)).
    stamp_ns: time the observation describes (ROS clock, nanoseconds), used to time the actions.
    """

    images: dict[str, npt.NDArray[np.uint8]]
    state: npt.NDArray[np.float32]
    instruction: str
    stamp_ns: int

    def __post_init__(self) -> None:
        for key, img in self.images.items():
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"image {key!r} must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
        if self.state.ndim != 1:
            raise ValueError(f"state must be 1-D, got shape {self.state.shape}")


@dataclass(frozen=True)
class ActionChunk:
    """A chunk of future robot commands predicted from one observation.

    actions: (T, D) float64; row t is the joint target to reach at ``stamp_ns + (t + 1) * dt_s``
        (LeRobot's convention: action t is applied at step t and reached one period later).
    names: robot joint name of each of the D columns.
    """

    actions: npt.NDArray[np.float64]
    names: tuple[str, ...]
    stamp_ns: int
    dt_s: float
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.actions.ndim != 2 or self.actions.shape[1] != len(self.names):
            raise ValueError(f"actions {self.actions.shape} do not match {len(self.names)} names")
        if self.dt_s <= 0:
            raise ValueError(f"dt_s must be > 0, got {self.dt_s}")
