"""The model contract every backend fulfils, and the one function that loads a backend."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from wallx_ros.core.types import ActionChunk, Observation
from wallx_ros.policy.config import BackendConfig

__all__ = ["PolicyBackend", "load_backend"]


@runtime_checkable
class PolicyBackend(Protocol):
    """A loaded policy: one observation in, one chunk of future joint commands out."""

    @property
    def action_names(self) -> tuple[str, ...]:
        """Robot joint of each column of ``predict_chunk(...).actions``."""
        ...

    @property
    def state_names(self) -> tuple[str, ...]:
        """Robot joint of each entry of ``Observation.state``, in order."""
        ...

    @property
    def cameras(self) -> tuple[str, ...]:
        """Camera keys (e.g. ``face_view``) every observation must carry."""
        ...

    @property
    def fps(self) -> float:
        """Rate of the actions within a chunk (Hz)."""
        ...

    @property
    def engine(self) -> str:
        """How chunks are computed (``stock`` LeRobot or wallx_ros's ``fast_flow``), for logs and diagnostics."""
        ...

    def predict_chunk(self, observation: Observation) -> ActionChunk:
        """Predict the next chunk of actions. Raises InferenceError for a bad observation."""
        ...

    def warmup(self) -> float:
        """Run one prediction on a synthetic observation so the first real one is not slow; returns ms."""
        ...

    def reset(self) -> None:
        """Forget any episode state (queues, caches) before a new episode."""
        ...


def load_backend(config: BackendConfig) -> PolicyBackend:
    """Load the WALL-OSS (LeRobot wall_x) backend described by ``config``."""
    from wallx_ros.policy.wallx_backend import WallXBackend

    return WallXBackend.load(config)
