"""The inference worker on the real tiny WallX backend: each request's metadata comes back with its own result,
and a request replaced before it ran never comes back (nothing is left to re-join by the caller)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from wallx_ros.core.types import Observation
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS
from wallx_ros.policy.inference_worker import InferenceRequest, InferenceResult, InferenceWorker


def _observation(stamp_ns: int) -> Observation:
    rng = np.random.default_rng(stamp_ns)
    return Observation(images={c: rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=rng.normal(size=14).astype(np.float32), instruction="put the peg in the socket",
                       stamp_ns=stamp_ns)


@pytest.fixture(scope="module")
def backend(tiny_checkpoint: Path):
    return load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))


def test_results_carry_their_requests_metadata(backend) -> None:
    results: list[InferenceResult[str]] = []
    done = threading.Event()
    first_running = threading.Event()

    def on_result(result: InferenceResult[str]) -> None:
        results.append(result)
        if result.metadata == "last":
            done.set()

    worker: InferenceWorker[str] = InferenceWorker(backend, on_result)
    real_predict = backend.predict_chunk
    release = threading.Event()

    def held_predict(obs, prefix=None):  # the first prediction waits until the test has queued the others
        if obs.stamp_ns == 1:
            first_running.set()
            assert release.wait(120)
        return real_predict(obs, prefix)

    backend.predict_chunk = held_predict
    try:
        worker.start()
        worker.submit(InferenceRequest(_observation(1), "first"))
        assert first_running.wait(120)
        worker.submit(InferenceRequest(_observation(2), "replaced"))  # waiting: replaced by the next one
        worker.submit(InferenceRequest(_observation(3), "last"))
        release.set()
        assert done.wait(300)
    finally:
        worker.stop()
        del backend.predict_chunk
    assert [r.metadata for r in results] == ["first", "last"]
    assert [r.observation.stamp_ns for r in results] == [1, 3]
    assert all(r.chunk is not None and r.chunk.stamp_ns == r.observation.stamp_ns for r in results)
    assert worker.dropped == 1


def test_failed_prediction_still_returns_the_metadata(backend) -> None:
    results: list[InferenceResult[dict[str, int]]] = []
    done = threading.Event()
    worker: InferenceWorker[dict[str, int]] = InferenceWorker(backend, lambda r: (results.append(r), done.set()))
    bad = Observation(images={}, state=np.zeros(14, np.float32), instruction="x", stamp_ns=7)  # no cameras
    worker.start()
    try:
        worker.submit(InferenceRequest(bad, {"generation": 4}))
        assert done.wait(120)
    finally:
        worker.stop()
    assert results[0].chunk is None and results[0].error is not None
    assert results[0].metadata == {"generation": 4}
