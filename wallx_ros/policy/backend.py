"""The model contract every backend fulfils, and the one function that loads a backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wallx_ros.core.realtime_chunking import ActionPrefix
from wallx_ros.core.types import ActionChunk, Observation
from wallx_ros.policy.config import BackendConfig

if TYPE_CHECKING:
    from wallx_ros.policy.text_generation import TextGenerator

__all__ = ["PolicyBackend", "TextBackend", "load_backend"]


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

    @property
    def rtc_problem(self) -> str:
        """Why ``predict_chunk`` cannot take a prefix of the running plan (real-time chunking); '' if it can."""
        ...

    @property
    def device(self) -> str:
        """Where the model runs (``cpu``, ``cuda``, ``cuda:1``...): the node reports GPU memory on CUDA."""
        ...

    @property
    def image_shapes(self) -> dict[str, tuple[int, ...]]:
        """(C, H, W) per camera key: the grid a node resizes frames to at arrival (decode once, at the model's size)."""
        ...

    def instruction_problem(self, text: str) -> str:
        """Why ``text`` cannot be the instruction under the model's own rules (control tokens, prompt room);
        '' if it can."""
        ...

    def predict_chunk(self, observation: Observation, prefix: ActionPrefix | None = None) -> ActionChunk:
        """Predict the next chunk of actions (continuing ``prefix``, the running plan, with real-time chunking).
        Raises InferenceError for a bad observation."""
        ...

    def warmup(self) -> float:
        """Run one prediction on a synthetic observation so the first real one is not slow; returns ms."""
        ...

    def reset(self) -> None:
        """Forget any episode state (queues, caches) before a new episode."""
        ...


@runtime_checkable
class TextBackend(Protocol):
    """A backend whose model also answers in words (WALL-OSS's language head): the node's language side."""

    def text_generator(self) -> TextGenerator:
        """The generator sharing the loaded model; use it only on the thread that calls ``predict_chunk``."""
        ...


def load_backend(config: BackendConfig) -> PolicyBackend:
    """Load the WALL-OSS (LeRobot wall_x) backend described by ``config``."""
    from wallx_ros.policy.wallx_backend import WallXBackend

    return WallXBackend.load(config)
