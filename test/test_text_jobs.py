"""The language side on the model's thread: subtask and questions fitted between action chunks.

Real LeRobot WallX on the tiny checkpoint and the real ``InferenceWorker`` thread with a ``TextScheduler``; what
is checked is the schedule, not speed: an answer equals the direct call on the observation the last chunk came
from; a unit never starts when it would run into the next action observation's time (a request that arrives
while the model is free waits for at most the one unit that was running); a subtask that finds no gap is skipped
and counted, a question that finds none ends with a clear reason at its deadline; bad questions are refused.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ros_harness import wait_until
from test_text_generation import PENALTY, observation

from wallx_ros.core.clock_rate import ClockRate
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.inference_worker import InferenceRequest, InferenceResult, InferenceWorker
from wallx_ros.policy.text_jobs import TextJob, TextJobResult, TextScheduler
from wallx_ros.policy.text_prompts import TextPrompt


@pytest.fixture(scope="module")
def backend(tiny_checkpoint: Path) -> Any:
    b = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))
    b._policy.model.generation_config.repetition_penalty = PENALTY  # answers move through the vocabulary
    return b


class Events:
    """What happened on the model's thread, in order (a recording wrapper around the real backend)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.log: list[str] = []
        self.lock = threading.Lock()

    def add(self, event: str) -> None:
        with self.lock:
            self.log.append(event)

    # the PolicyBackend surface the worker uses
    @property
    def device(self) -> str:
        return str(self.backend.device)

    def predict_chunk(self, obs: Any, prefix: Any = None) -> Any:
        self.add("chunk_start")
        try:
            return self.backend.predict_chunk(obs, prefix)
        finally:
            self.add("chunk_end")


class RecordingScheduler(TextScheduler):
    """Logs the start and end of every text unit."""

    def __init__(self, events: Events, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.events = events

    def _start(self, job: TextJob, obs: Any) -> None:
        self.events.add("unit_start")
        try:
            super()._start(job, obs)
        finally:
            self.events.add("unit_end")

    def _advance(self, job: TextJob) -> None:
        self.events.add("unit_start")
        try:
            super()._advance(job)
        finally:
            self.events.add("unit_end")


class Rig:
    def __init__(self, backend: Any, window_s: Any) -> None:
        self.events = Events(backend)
        self.results: list[InferenceResult[int]] = []
        self.text = RecordingScheduler(self.events, backend.text_generator, window_s)
        self.worker: InferenceWorker[int] = InferenceWorker(self.events, self._on_result, text=self.text)  # type: ignore[arg-type]
        self.worker.start()

    def _on_result(self, result: InferenceResult[int]) -> None:
        self.results.append(result)

    def chunk(self, seed: int, mark: bool = False) -> InferenceResult[int]:
        """A chunk for ``observation(seed)``; ``mark``: log ``submit_<seed>`` in the same step as the submission
        (under the event log's lock: no event of the model's thread can fall between the two)."""
        count = len(self.results)
        with self.events.lock:
            if mark:
                self.events.log.append(f"submit_{seed}")
            self.worker.submit(InferenceRequest(observation(seed), seed))
        assert wait_until(lambda: len(self.results) > count, 120)
        return self.results[count]

    def ask(self, question: str, tokens: int, timeout_s: float = 120.0) -> TextJobResult:
        done: list[TextJobResult] = []
        refusal = self.text.submit_question(TextJob(TextPrompt("question", question), tokens,
                                                    time.monotonic() + timeout_s, done.append))
        assert not refusal, refusal
        self.worker.wake()
        assert wait_until(lambda: bool(done), timeout_s + 60)
        return done[0]

    def close(self) -> None:
        self.worker.stop()


def test_a_question_is_answered_about_the_last_chunks_observation(backend: Any) -> None:
    rig = Rig(backend, lambda: math.inf)
    try:
        refused: list[TextJobResult] = []
        job = TextJob(TextPrompt("question", "what is on the table?"), 4, time.monotonic() + 60, refused.append)
        assert "no observation yet" in rig.text.submit_question(job)
        assert rig.chunk(21).chunk is not None
        result = rig.ask("what is on the table?", 6)
        assert result.error == "" and result.answer is not None
        direct = backend.text_generator().generate(observation(21), TextPrompt("question", "what is on the table?"), 6)
        assert result.answer.text == direct.text and result.answer.stop_reason == direct.stop_reason
        assert result.answer.observation_stamp_ns == observation(21).stamp_ns
        counters = rig.text.counters()
        assert counters.questions_done == 1 and counters.questions_refused == 1
        assert counters.prefill_ms > 0 and counters.token_ms > 0
        # the chunk after the answer is the chunk without it (the model's state was put back)
        np.testing.assert_array_equal(rig.chunk(22).chunk.actions, backend.predict_chunk(observation(22)).actions)
    finally:
        rig.close()


def test_no_gap_means_no_unit_a_subtask_is_skipped_and_a_question_ends_at_its_deadline(backend: Any) -> None:
    window = [0.0]  # the next observation is due now: the model is never free
    rig = Rig(backend, lambda: window[0])
    try:
        rig.chunk(31)
        subtasks: list[TextJobResult] = []
        rig.text.submit_subtask(TextJob(TextPrompt("subtask", "stack the cups"), 4, time.monotonic() + 0.5,
                                        subtasks.append))
        rig.worker.wake()
        assert wait_until(lambda: bool(subtasks), 60)
        assert subtasks[0].answer is None and "skipped" in subtasks[0].error
        result = rig.ask("where is the cup?", 4, timeout_s=0.5)
        assert result.answer is None and "no gap between action chunks" in result.error
        counters = rig.text.counters()
        assert counters.subtasks_skipped == 1 and counters.units_deferred > 0
        assert "unit_start" not in rig.events.log
        # a gap opens: the next subtask is answered (newest submitted replaces the one waiting, counted)
        for _ in range(2):
            rig.text.submit_subtask(TextJob(TextPrompt("subtask", "stack the cups"), 3, time.monotonic() + 120,
                                            subtasks.append))
        window[0] = math.inf
        rig.worker.wake()
        assert wait_until(lambda: len(subtasks) > 1, 120)
        assert subtasks[1].answer is not None and subtasks[1].answer.new_tokens == 3
        assert rig.text.counters().subtasks_skipped == 2 and rig.text.counters().subtasks_done == 1
    finally:
        rig.close()


def test_an_action_request_waits_for_at_most_the_running_unit(backend: Any) -> None:
    """While a long answer is decoded unit by unit, action requests keep coming: each starts right after the unit
    that was running when it arrived (no unit starts while a request waits), and every request is predicted."""
    rig = Rig(backend, lambda: math.inf)
    try:
        rig.chunk(41)
        done: list[TextJobResult] = []
        rig.text.submit_question(TextJob(TextPrompt("question", "describe the scene"), 40, time.monotonic() + 600,
                                         done.append))
        rig.worker.wake()
        for seed in range(42, 46):  # chunks requested while the answer is being decoded
            assert wait_until(lambda: rig.events.log.count("unit_end") >= 2 or bool(done), 120)
            assert rig.chunk(seed, mark=True).chunk is not None
        assert wait_until(lambda: bool(done), 300)
        assert done[0].answer is not None and done[0].answer.new_tokens == 40
        log = rig.events.log
        for seed in range(42, 46):
            after = log[log.index(f"submit_{seed}") + 1:]
            before_chunk = after[:after.index("chunk_start")]
            # the unit that was running ends, or the one the thread had already decided to start (it found no
            # request waiting an instant before) runs: never a second unit
            assert before_chunk in ([], ["unit_end"], ["unit_start", "unit_end"]), (seed, before_chunk)
        assert log.count("chunk_start") == 5
        # the answer is the direct call's on the observation it started from
        direct = backend.text_generator().generate(observation(41), TextPrompt("question", "describe the scene"), 40)
        assert done[0].answer.observation_stamp_ns == observation(41).stamp_ns
        assert done[0].answer.text == direct.text
    finally:
        rig.close()


def test_bad_questions_are_refused_and_the_worker_keeps_serving(backend: Any) -> None:
    rig = Rig(backend, lambda: math.inf)
    try:
        rig.chunk(51)
        for question, reason in (("", "empty"), ("what is <|image_pad|>?", "control token"),
                                 ("x " * 400, "tokens")):
            result = rig.ask(question, 4)
            assert result.answer is None and reason in result.error, result.error
        assert rig.chunk(52).chunk is not None
        assert rig.ask("what is red?", 2).answer is not None
    finally:
        rig.close()


def test_clock_rate_converts_simulated_durations_to_wall_time() -> None:
    rate = ClockRate(interval_s=0.5)
    assert rate.wall_s(0.3) == 0.3  # real time until measured
    rate.update(10.0, 100 * 10**9)
    rate.update(10.2, 100 * 10**9 + 10**7)  # under the interval: not yet
    assert rate.rate == 1.0
    rate.update(11.0, 100 * 10**9 + 10**8)  # 0.1 simulated s in 1 wall s
    assert rate.rate == pytest.approx(0.1) and rate.wall_s(0.3) == pytest.approx(3.0)
    rate.update(12.0, 100 * 10**9 + 10**8)  # paused simulation
    assert rate.rate == 0.0 and rate.wall_s(0.3) == math.inf
    rate.update(12.1, 5 * 10**9)  # a reset: the measurement restarts, the last rate stays
    rate.update(13.1, 5 * 10**9 + 2 * 10**9)
    assert rate.rate == pytest.approx(2.0) and rate.wall_s(math.inf) == math.inf
