"""The thread that owns the model: takes the newest request, predicts, hands the result back.

The executor never waits on the model: ``submit`` only swaps the request in a locked one-element
slot (latest wins, no queue can grow), and results go to a callback that the node turns into an
executor event (a guard condition), so that all publishing happens in executor callbacks. On CUDA the
worker runs its model calls on its own stream.

A request carries the caller's ``metadata`` (whatever it needs to use the chunk: the robot state at the
observation, stage timings so far, ...) through the worker and back in the result: nothing has to be
looked up again when the chunk comes back, and a request replaced before it ran leaves nothing behind.

With a ``TextScheduler`` (the language side: subtask, questions) the worker runs its units while no request
waits, each only if it ends before the next observation is due (``policy.text_jobs``): chunks come first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from wallx_ros.core.realtime_chunking import ActionPrefix
from wallx_ros.core.types import ActionChunk, Observation
from wallx_ros.policy.backend import PolicyBackend
from wallx_ros.policy.errors import InferenceError

if TYPE_CHECKING:
    from wallx_ros.policy.text_jobs import TextScheduler

__all__ = ["InferenceRequest", "InferenceResult", "InferenceWorker"]

_LOG = logging.getLogger("wallx_ros.policy")

MetaT = TypeVar("MetaT")


@dataclass(frozen=True)
class InferenceRequest(Generic[MetaT]):
    """One prediction to make: the observation, the running plan's prefix (real-time chunking) and the
    caller's ``metadata``, handed back untouched in the result."""

    observation: Observation
    metadata: MetaT
    prefix: ActionPrefix | None = None


@dataclass(frozen=True)
class InferenceResult(Generic[MetaT]):
    """Outcome of one prediction: a chunk, or the error that prevented it; ``request`` is what was submitted."""

    request: InferenceRequest[MetaT]
    chunk: ActionChunk | None
    error: Exception | None
    started_monotonic: float
    finished_monotonic: float

    @property
    def observation(self) -> Observation:
        return self.request.observation

    @property
    def metadata(self) -> MetaT:
        return self.request.metadata

    @property
    def duration_ms(self) -> float:
        return (self.finished_monotonic - self.started_monotonic) * 1000.0


class InferenceWorker(Generic[MetaT]):
    """Runs ``backend.predict_chunk`` on the latest submitted request in a dedicated thread."""

    def __init__(self, backend: PolicyBackend, on_result: Callable[[InferenceResult[MetaT]], None],
                 name: str = "wallx-inference", text: TextScheduler | None = None) -> None:
        self._backend = backend
        self.text = text
        self._on_result = on_result
        self._lock = threading.Lock()
        self._pending: InferenceRequest[MetaT] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = False
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: InferenceRequest[MetaT]) -> None:
        """Offer a request (observation, metadata, the running plan's prefix for real-time chunking); an older
        one still waiting is replaced (and counted as dropped)."""
        with self._lock:
            if self._pending is not None:
                self._dropped += 1
            self._pending = request
        self._wake.set()

    @property
    def busy(self) -> bool:
        """True while a prediction runs or an observation waits for one."""
        with self._lock:
            return self._busy or self._pending is not None

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    def wake(self) -> None:
        """Look for work now (a text job was submitted)."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to finish its current prediction and exit; wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _take(self) -> InferenceRequest[MetaT] | None:
        with self._lock:
            item, self._pending = self._pending, None
            self._busy = item is not None
            return item

    def _run(self) -> None:
        stream_ctx = _cuda_stream_context(self._backend.device)
        text = self.text
        with stream_ctx:
            while not self._stop.is_set():
                self._wake.clear()  # before taking: a submit after this wakes the wait below
                item = self._take()  # (busy is False once nothing waits)
                if item is not None:
                    result = self._predict(item)
                    if text is not None and result.chunk is not None:
                        text.observe(item.observation, result.duration_ms)
                    self._on_result(result)
                    continue
                if text is not None and text.run_unit():
                    continue
                self._wake.wait(text.recheck_s() if text is not None else None)
            if text is not None:
                text.cancel_all("the inference worker stopped")

    def _predict(self, request: InferenceRequest[MetaT]) -> InferenceResult[MetaT]:
        start = time.monotonic()
        try:
            chunk = self._backend.predict_chunk(request.observation, request.prefix)
            return InferenceResult(request, chunk, None, start, time.monotonic())
        except InferenceError as err:
            return InferenceResult(request, None, err, start, time.monotonic())
        except Exception as err:
            _LOG.exception("unexpected error in the inference worker")
            return InferenceResult(request, None, InferenceError(f"{type(err).__name__}: {err}"), start,
                                   time.monotonic())


def _cuda_stream_context(device: str) -> AbstractContextManager[Any]:
    """``torch.cuda.stream(new stream)`` on CUDA, a no-op elsewhere."""
    if not str(device).startswith("cuda"):
        return nullcontext()
    import torch

    return torch.cuda.stream(torch.cuda.Stream(device=device))  # type: ignore[no-untyped-call]
