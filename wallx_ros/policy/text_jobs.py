"""The language side's jobs on the model's thread: the current subtask and operator questions, in the gaps
between action chunks.

The inference worker owns the model, and action chunks always come first. Between them it runs an answer one
*unit* at a time (``TextDecoding.advance``: the prompt's forward, then one token per unit), and a unit only when
it fits: its expected duration (the running average of that kind of unit; for a first prompt, the last action
inference) must end before the next action observation is due (``window_s``: from the running plan and the
expected latency, ``inf`` when no chunk is wanted). So text never delays an action chunk by more than the
misestimate of one unit. A subtask that finds no gap before the next one is due is *skipped* and counted; a
question that finds none before its deadline is answered with what it has (stop reason ``timeout``).

Answers are about the newest observation the worker has predicted on (``observe``): the images and state the
last action chunk came from. ``TextScheduler`` is thread-safe for ``submit_*``/``counters``; ``run_unit``,
``observe`` and ``cancel_all`` belong to the worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wallx_ros.core.types import Observation
from wallx_ros.policy.errors import InferenceError, TextRequestError
from wallx_ros.policy.text_prompts import TextPrompt

if TYPE_CHECKING:  # torch and the model come with the generator, not with this module
    from wallx_ros.policy.text_generation import TextAnswer, TextDecoding, TextGenerator

__all__ = ["TextCounters", "TextJob", "TextJobResult", "TextScheduler"]

_LOG = logging.getLogger("wallx_ros.policy")
_EWMA = 0.3  # weight of the newest unit duration in the running estimate
_RECHECK_S = 0.01  # how soon the worker looks again for a gap while text work waits


@dataclass(frozen=True)
class TextJobResult:
    """How a job ended: an ``answer`` (possibly cut at its deadline), or an ``error`` ('' with an answer)."""

    answer: TextAnswer | None
    error: str
    waited_ms: float  # submitted -> finished, gaps and units together


@dataclass
class TextJob:
    """One answer to produce: ``prompt`` about the newest observation, at most ``max_new_tokens``, finished by
    ``deadline_monotonic``; ``on_done`` gets the result (on the worker thread)."""

    prompt: TextPrompt
    max_new_tokens: int
    deadline_monotonic: float
    on_done: Callable[[TextJobResult], None]
    submitted_monotonic: float = field(default_factory=time.monotonic)
    decoding: TextDecoding | None = None


@dataclass
class TextCounters:
    """What the language side did (for diagnostics): answers, skips, and the unit estimates it scheduled by."""

    subtasks_done: int = 0
    subtasks_skipped: int = 0  # replaced or past their deadline before they could start
    questions_done: int = 0
    questions_refused: int = 0
    units_deferred: int = 0  # times a unit waited because it would have delayed the next chunk
    prefill_ms: float = float("nan")  # running estimates of one unit
    token_ms: float = float("nan")


class TextScheduler:
    """Subtask (one slot, newest wins) and questions (one at a time) fitted between action chunks."""

    def __init__(self, generator: Callable[[], TextGenerator], window_s: Callable[[], float],
                 margin_s: float = 0.005) -> None:
        """``generator`` builds the model's TextGenerator (called once, on the worker thread); ``window_s`` says
        how long until the next action observation is due; ``margin_s`` is kept free before it."""
        self._make_generator = generator
        self._generator: TextGenerator | None = None
        self._window_s = window_s
        self._margin_s = margin_s
        self._lock = threading.Lock()
        self._subtask: TextJob | None = None
        self._question: TextJob | None = None
        self._observation: Observation | None = None
        self._action_ms = float("nan")
        self._counters = TextCounters()

    # -- any thread -------------------------------------------------------------------------------------------
    def submit_subtask(self, job: TextJob) -> None:
        """Offer the subtask job; one not yet started is replaced (counted as skipped)."""
        with self._lock:
            old = self._subtask
            if old is not None and old.decoding is None:
                self._counters.subtasks_skipped += 1
                self._subtask = job
            elif old is None:
                self._subtask = job
            else:  # an answer is under way: let it finish, this request is skipped
                self._counters.subtasks_skipped += 1

    def submit_question(self, job: TextJob) -> str:
        """Queue a question; '' or why it cannot be asked now (no observation yet, one is being answered)."""
        with self._lock:
            if self._observation is None:
                self._counters.questions_refused += 1
                return "no observation yet: the model has not seen the robot's inputs"
            if self._question is not None:
                self._counters.questions_refused += 1
                return "another question is being answered: ask again when it is done"
            self._question = job
            return ""

    def counters(self) -> TextCounters:
        with self._lock:
            return TextCounters(**vars(self._counters))

    @property
    def has_work(self) -> bool:
        with self._lock:
            return self._question is not None or (self._subtask is not None and self._observation is not None)

    # -- the worker thread ------------------------------------------------------------------------------------
    def observe(self, observation: Observation, action_ms: float) -> None:
        """The worker predicted a chunk on ``observation`` in ``action_ms``: the newest view of the scene."""
        with self._lock:
            self._observation = observation
            self._action_ms = action_ms

    def recheck_s(self) -> float | None:
        """How long the idle worker may sleep before looking for a gap again (None: until woken)."""
        return _RECHECK_S if self.has_work else None

    def run_unit(self) -> bool:
        """Run one unit of the most urgent job if it fits before the next action is due; True if anything was
        done (a unit, or a job ended), False when waiting for a gap or idle."""
        now = time.monotonic()
        with self._lock:
            job = self._question or (self._subtask if self._observation is not None else None)
            observation = self._observation
        if job is None or observation is None:
            return False
        if now >= job.deadline_monotonic:
            self._finish(job, reason="timeout")
            return True
        estimate_s = self._estimate_ms(job) / 1e3
        if estimate_s + self._margin_s > self._window_s():
            with self._lock:
                self._counters.units_deferred += 1
            return False
        try:
            if job.decoding is None:
                self._start(job, observation)
            else:
                self._advance(job)
        except (TextRequestError, InferenceError) as err:
            self._done(job, TextJobResult(None, str(err), (time.monotonic() - job.submitted_monotonic) * 1e3))
            return True
        if job.decoding is not None and job.decoding.done:
            self._finish(job)
        return True

    def cancel_all(self, reason: str) -> None:
        """End every job with ``reason`` as its error (the worker stops)."""
        with self._lock:
            jobs = [j for j in (self._question, self._subtask) if j is not None]
        for job in jobs:
            self._done(job, TextJobResult(None, reason, (time.monotonic() - job.submitted_monotonic) * 1e3))

    # -- internals --------------------------------------------------------------------------------------------
    def _estimate_ms(self, job: TextJob) -> float:
        with self._lock:
            c, action_ms = self._counters, self._action_ms
        if job.decoding is None:  # the prompt's forward (images included): like an action inference at first
            known = c.prefill_ms if c.prefill_ms == c.prefill_ms else action_ms
            return known if known == known else 0.0
        if c.token_ms == c.token_ms:
            return c.token_ms
        return c.prefill_ms / 4 if c.prefill_ms == c.prefill_ms else 0.0

    def _learn(self, name: str, ms: float) -> None:
        with self._lock:
            old = getattr(self._counters, name)
            setattr(self._counters, name, ms if old != old else (1 - _EWMA) * old + _EWMA * ms)

    def _start(self, job: TextJob, observation: Observation) -> None:
        if self._generator is None:
            self._generator = self._make_generator()
        job.decoding = self._generator.start(observation, job.prompt, job.max_new_tokens)
        started = time.monotonic()
        job.decoding.advance()
        self._learn("prefill_ms", (time.monotonic() - started) * 1e3)

    def _advance(self, job: TextJob) -> None:
        assert job.decoding is not None
        started = time.monotonic()
        job.decoding.advance()
        self._learn("token_ms", (time.monotonic() - started) * 1e3)

    def _finish(self, job: TextJob, reason: str = "") -> None:
        """The job ends: with its answer (cut at ``reason`` if given), or skipped if it never started."""
        waited = (time.monotonic() - job.submitted_monotonic) * 1e3
        if job.decoding is None:
            with self._lock:
                if job.prompt.kind == "subtask":
                    self._counters.subtasks_skipped += 1
            error = ("no gap between action chunks before the deadline" if job.prompt.kind == "question"
                     else "skipped: no gap between action chunks before the next subtask was due")
            self._done(job, TextJobResult(None, error, waited))
            return
        if reason:
            job.decoding.stop(reason)
        self._done(job, TextJobResult(job.decoding.answer(), "", waited))

    def _done(self, job: TextJob, result: TextJobResult) -> None:
        with self._lock:
            if self._question is job:
                self._question = None
                if result.answer is not None:
                    self._counters.questions_done += 1
            if self._subtask is job:
                self._subtask = None
                if result.answer is not None:
                    self._counters.subtasks_done += 1
        try:
            job.on_done(result)
        except Exception:  # a caller's callback must not end the model's thread
            _LOG.exception("text job callback failed")
