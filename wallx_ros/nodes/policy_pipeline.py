"""The policy node's inference round trip, ROS-free: synced inputs -> model worker -> checked chunk.

``PolicyPipeline`` owns the inference worker and what links a submission to its result: when an observation
is due (the execution horizon, the expected latency), what it carries through the worker
(``nodes.policy_requests.Submitted``), which timeline it belongs to (a clock jump starts a new one), and
what becomes of the chunk (``PolicyControl.on_chunk``, the stage timings, the status). Publishing stays
with the node: the pipeline calls ``send`` with each command and ``reject`` with each reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from wallx_ros.core.latency import LatencyTracker
from wallx_ros.core.policy_control import ChunkOutcome, PolicyControl, TrajectoryCommand
from wallx_ros.core.stream_sync import SyncResult
from wallx_ros.nodes.policy_requests import Submitted, observation_request, stage_timings
from wallx_ros.nodes.policy_status import StatusFields
from wallx_ros.policy.backend import PolicyBackend
from wallx_ros.policy.inference_worker import InferenceResult, InferenceWorker
from wallx_ros.policy.text_jobs import TextScheduler

__all__ = ["PolicyPipeline"]

_NS = 1_000_000_000


class PolicyPipeline:
    """One configuration's inference loop. ``wake`` is called from the worker thread when a result waits
    (the node triggers a guard condition); everything else runs in the node's control group, except
    ``maybe_submit`` (also input threads: single-entry by its lock)."""

    def __init__(self, control: PolicyControl, backend: PolicyBackend, cameras: tuple[str, ...],
                 status: StatusFields, latency: LatencyTracker, smoothness: LatencyTracker,
                 wake: Callable[[], None], text: TextScheduler | None = None) -> None:
        self.control = control
        self.cameras = cameras
        self.status = status
        self.latency = latency
        self.smoothness = smoothness
        self._wake = wake
        self._lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._results: list[InferenceResult[Submitted]] = []
        self._generation = 0  # the timeline of the observations: a clock jump starts a new one
        self._last_submitted_stamp = -1
        self.expected_latency_s = 0.0
        self.worker: InferenceWorker[Submitted] = InferenceWorker(backend, self._on_worker_result, text=text)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    @property
    def busy(self) -> bool:
        return self.worker.busy

    def restart(self) -> None:
        """Take the next observation whatever its stamp (activation, resume)."""
        with self._submit_lock:
            self._last_submitted_stamp = -1

    def new_timeline(self) -> None:
        """The clock jumped back: chunks of observations taken before are dropped on arrival."""
        with self._lock:
            self._generation += 1
        self.restart()

    def text_window_s(self, now_ns: int) -> float:
        """Seconds the model is free before the next observation is due (the language side's gap)."""
        return self.control.replan_in_s(now_ns, self.expected_latency_s)

    # -- submission ---------------------------------------------------------------------------------------
    def maybe_submit(self, now_ns: Callable[[], int], synced: Callable[[int], SyncResult[Any]],
                     one_way_delay_s: Callable[[], float], clock_problems: Callable[[], tuple[str, ...]],
                     instruction: str, sim_time: bool, max_age_s: float | None, warn: Callable[[str], None]) -> None:
        """Hand the latest synced observation to the worker if one is due. Called from input threads and the
        control group: the lock makes it single-entry; it only reads control state (atomic attribute reads)."""
        if not self._submit_lock.acquire(blocking=False):
            return
        try:
            self._submit(now_ns, synced, one_way_delay_s, clock_problems, instruction, sim_time, max_age_s, warn)
        finally:
            self._submit_lock.release()

    def _submit(self, now_ns: Callable[[], int], synced_at: Callable[[int], SyncResult[Any]],
                one_way_delay_s: Callable[[], float], clock_problems: Callable[[], tuple[str, ...]],
                instruction: str, sim_time: bool, max_age_s: float | None, warn: Callable[[str], None]) -> None:
        if self.worker.busy:
            return
        with self._lock:
            if self._results:  # a chunk awaits the executor: the next observation must see the plan it makes
                return
        now = now_ns()
        # the chunk must reach the robot in time: inference plus the trip back over the network
        if not self.control.replan_due(now, self.expected_latency_s + one_way_delay_s()):
            return
        synced = synced_at(now)
        if not synced.ok or synced.samples is None or clock_problems():
            return
        stamp = synced.stamp_ns
        if stamp <= self._last_submitted_stamp:
            return  # nothing new since the last observation
        if max_age_s is not None and stamp - now > round(max_age_s * _NS):
            # from the future: the publishers' clock is ahead (use_sim_time mismatch) or ours jumped back
            warn(f"inputs stamped {(stamp - now) / _NS:.3f} s in the future of this node's clock: "
                 "not used (check use_sim_time and clock sync)")
            return
        self._last_submitted_stamp = stamp
        self.worker.submit(observation_request(synced, self.cameras, self.control, instruction, now, sim_time,
                                               self._generation))

    def _on_worker_result(self, result: InferenceResult[Submitted]) -> None:
        """Worker thread: queue the result and wake the executor."""
        with self._lock:
            self._results.append(result)
        self._wake()

    def take_results(self) -> list[InferenceResult[Submitted]]:
        with self._lock:
            results, self._results = self._results, []
        return results

    # -- results ------------------------------------------------------------------------------------------
    def handle(self, result: InferenceResult[Submitted], now_ns: Callable[[], int], one_way_delay_s: float,
               sim_time: bool, send: Callable[[TrajectoryCommand], bool],
               reject: Callable[[str], None]) -> ChunkOutcome | None:
        """Turn one result into a published command; returns the outcome if ``send`` published it."""
        meta = result.metadata
        if meta.generation != self._generation:
            return None  # observed before a clock jump: the old timeline is gone
        self.expected_latency_s = 0.7 * self.expected_latency_s + 0.3 * (time.monotonic() - result.started_monotonic)
        self.control.observe(meta.robot_state)
        if result.chunk is None:
            reject(f"inference failed: {result.error}")
            return None
        chunk = result.chunk
        t0 = time.monotonic()
        handoff_ms = (t0 - result.finished_monotonic) * 1e3
        # the chunk takes over on the robot once it got there: switch (blend, skip past points, expiry) at
        # now + the measured one-way transport delay (0 on one host)
        arrival = now_ns() + round(one_way_delay_s * 1e9)
        # the JTC rules are checked when the command goes out, at that time (``send``; check=False avoids
        # doing it twice)
        outcome = self.control.on_chunk(chunk.actions, meta.robot_state, chunk.stamp_ns, arrival, check=False,
                                        rtc=meta.rtc)
        post_ms = chunk.timings_ms.get("postprocess", 0.0) + (time.monotonic() - t0) * 1e3
        self.status.record_boundary(outcome)
        if outcome.prefix_error is not None:
            self.smoothness.record("rtc_prefix_error", outcome.prefix_error)
        if outcome.command is None:
            reject("; ".join(outcome.problems))
            return None
        t1 = time.monotonic()
        if not send(outcome.command):
            return None
        publish_ms = (time.monotonic() - t1) * 1e3
        # end to end: oldest input stamp -> published, on the node's clock (includes the camera-to-host transport);
        # on simulated time, wall-clock from the oldest input's arrival (sim time may stand still meanwhile)
        end_to_end_ms = ((time.monotonic() - meta.oldest_arrival_monotonic) * 1e3 if sim_time
                         else (now_ns() - meta.oldest_stamp_ns) / 1e6)
        timings = stage_timings(result, handoff_ms, post_ms, publish_ms, end_to_end_ms)
        self.latency.record_many(timings)
        self.status.record_published(outcome, chunk.stamp_ns, timings)
        if outcome.switch is not None:
            self.smoothness.record_many(self.status.switch_figures())
        return outcome
