"""Live episode recording, ROS-free: stamped samples in, fixed-fps frames out to a DatasetWriter thread.

The recorder node (and anything else that receives camera images, joint states and commands) calls
``push_image`` / ``push_state`` / ``push_action`` from any thread, ``tick(now_ns)`` periodically, and
``start`` / ``stop`` from a service. While an episode is open, samples feed a
:class:`~wallx_ros.core.frame_alignment.FrameAligner` (cameras nearest in time, state and action as of the
frame time, each within its max age); final frames pass the gap policy (:mod:`wallx_ros.core.frame_gaps`)
and go, in order, through a :class:`~wallx_ros.dataset.writer_queue.WriterQueue` (memory, then disk) to one
writer thread that owns the :class:`~wallx_ros.dataset.writer.DatasetWriter`. Nothing on the capture side
waits for the writer or the video encoders.

Episodes end by ``stop`` (save or discard), at ``max_episode_s`` (with ``continuous`` the next episode goes
on at the very next frame), at a gap (``split``: saved, and the next part starts after the gap) or at
``close``. Each save is queued exactly once: ``close`` (SIGINT/SIGTERM, however often) saves an open
episode and waits until every queued save is done, including one an automatic cut just queued.

Clock: stamps and ``now_ns`` must be on the same clock (the node's ROS clock; sim time works).
A frame is final once every stream has a newer sample, or ``now - watermark_delay_s`` has passed it.
"""

# size: one recorder state machine (start, stop, cut, save, discard, close) whose transitions share one lock
#   with the writer thread's queue; its invariants are read together

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import NonMonotonicStampError
from wallx_ros.core.frame_alignment import AlignedFrame, AlignmentStats, FrameAligner, SkewSummary
from wallx_ros.core.frame_gaps import GapError, GapTracker
from wallx_ros.dataset.errors import DatasetError, DatasetSpecError, DatasetStateError, DatasetWriteError
from wallx_ros.dataset.recorder_types import EpisodeNotes, RecorderConfig, RecorderStatus
from wallx_ros.dataset.recording_config import ACTION_STREAM, STATE_STREAM
from wallx_ros.dataset.recovery import state_dir_for
from wallx_ros.dataset.spec import CameraSpec, DatasetSpec
from wallx_ros.dataset.writer import DatasetWriter, EpisodeReport
from wallx_ros.dataset.writer_queue import WriterQueue

__all__ = ["ACTION_STREAM", "STATE_STREAM", "EpisodeNotes", "Recorder", "RecorderConfig", "RecorderStatus"]

_LOG = logging.getLogger("wallx_ros.recorder")
_NS = 1_000_000_000


class Recorder:
    """See module doc. Thread-safe."""

    def __init__(self, config: RecorderConfig, log: Callable[[str], None] | None = None,
                 error_log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._log = log or _LOG.info
        self._error_log = error_log or _LOG.error
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # state changes (close waits on them)
        self._input_ended = threading.Event()  # wakes a stop() waiting for late samples
        self._aligner: FrameAligner[Any] | None = None
        self._gaps: GapTracker | None = None
        self._episode_start_ns = 0
        self._stop_ns = 0
        self._task = ""
        self._image_shapes: dict[str, tuple[int, int]] = {}
        self._samples = dict.fromkeys(config.stream_names, 0)
        self._state = "starting"
        self._closing = False
        self._episode_index: int | None = None
        self._part_frames = 0
        self._events_from = 0  # gap events before this index belong to parts already cut
        self._part_held = 0
        self._overruns = 0
        self._last_error = ""
        self._last_saved: EpisodeReport | None = None
        self._last_notes: EpisodeNotes | None = None
        self._last_alignment: AlignmentStats | None = None
        self._last_skew: dict[str, SkewSummary] = {}
        self._episodes = 0
        self._total_frames = 0
        self._pending_saves = 0
        self._writer_failed = ""  # set by the writer thread: the open episode cannot be written any more
        self._writer: DatasetWriter | None = None
        self._writer_episode = False
        self._queue = WriterQueue(state_dir_for(config.dataset.root) / "spool" / "frames", config.max_queued_frames)
        self._thread = threading.Thread(target=self._run, name="wallx_recorder_writer", daemon=True)
        self._thread.start()
        self._queue.put_command("warm")

    # -- inputs (any thread) -----------------------------------------------------------------------------
    def push_image(self, camera: str, stamp_ns: int, rgb: npt.NDArray[np.uint8]) -> None:
        with self._lock:
            self._image_shapes[camera] = (int(rgb.shape[0]), int(rgb.shape[1]))
            self._push(camera, stamp_ns, rgb)

    def push_state(self, stamp_ns: int, positions: npt.NDArray[np.floating[Any]]) -> None:
        with self._lock:
            self._push(STATE_STREAM, stamp_ns, np.asarray(positions, np.float32))

    def push_action(self, stamp_ns: int, command: npt.NDArray[np.floating[Any]]) -> None:
        with self._lock:
            self._push(ACTION_STREAM, stamp_ns, np.asarray(command, np.float32))

    def _push(self, stream: str, stamp_ns: int, value: Any) -> None:
        self._samples[stream] += 1
        if self._aligner is None or stamp_ns < self._episode_start_ns - round(self.config.max_age_s * _NS):
            return
        try:
            self._aligner.push(stream, stamp_ns, value)
        except NonMonotonicStampError as err:
            self._error_log(f"recorder: {err}")

    # -- periodic (any thread) ---------------------------------------------------------------------------
    def tick(self, now_ns: int) -> None:
        """Hand final frames to the writer (cutting episodes at max_episode_s and at gaps)."""
        with self._lock:
            if self._aligner is None:
                return
            if self._writer_failed and self._state == "recording":
                self._end_locked("error", save=False, error=self._writer_failed)
                return
            self._route(self._aligner.pop_ready(now_ns - round(self.config.watermark_delay_s * _NS)))

    def _route(self, frames: list[AlignedFrame[Any]]) -> None:
        """Under the lock: each final frame passes the gap policy and the episode length, then is queued."""
        limit = round(self.config.max_episode_s * self.config.dataset.fps)
        for frame in frames:
            if self._aligner is None or self._gaps is None:
                return
            if self._state == "stopping" and frame.stamp_ns > self._stop_ns:
                continue  # after the stop instant: not part of this episode
            try:
                split = self._gaps.check(frame)
            except GapError as err:
                self._end_locked("gap_fail", save=True, error=str(err))
                return
            if split:
                self._cut_locked("gap")
            elif limit > 0 and self._part_frames >= limit:
                if not self.config.continuous:
                    self._end_locked("max_episode_s", save=True)
                    return
                self._cut_locked("max_episode_s")
            if frame.held:
                self._part_held += 1
            if not self._queue.put_frame((frame, self._task)):
                self._end_locked("error", save=True, error="the disk is full: frames waiting for the writer cannot be "
                                                           "spooled; the episode ends here")
                return
            self._part_frames += 1

    def _notes_locked(self, ended_by: str, left_out: int = 0) -> EpisodeNotes:
        assert self._episode_index is not None
        skew = self._aligner.skew() if self._aligner is not None else {}
        events = tuple(self._gaps.events[self._events_from:]) if self._gaps is not None else ()
        self._events_from += len(events)
        return EpisodeNotes(self._episode_index, ended_by, events, self._part_held, left_out, skew)

    def _cut_locked(self, reason: str) -> None:
        """Save the open part and go on with the next episode at the next frame (same recording)."""
        self._queue_save_locked(self._notes_locked(reason), save=True)
        assert self._episode_index is not None
        self._episode_index += 1
        self._part_frames = 0
        self._part_held = 0
        self._queue.put_command("start", self._task)

    def _end_locked(self, reason: str, save: bool, error: str = "", left_out: int = 0) -> Future[Any]:
        """Close the recording: queue the save (or discard) of the open part; the capture side goes idle."""
        if self._gaps is not None and self._aligner is not None:
            self._gaps.finish(self._aligner.trailing_dropped)
        notes = self._notes_locked(reason, left_out)
        future = self._queue_save_locked(notes, save)
        if self._aligner is not None:
            self._last_alignment = self._aligner.stats
            self._last_skew = self._aligner.skew()
        self._aligner = None
        self._gaps = None
        self._episode_index = None
        self._part_frames = 0
        self._state = "error" if error else "idle"
        if error:
            self._last_error = error
            self._error_log(f"recording stopped: {error}")
        self._changed.notify_all()
        return future

    def _queue_save_locked(self, notes: EpisodeNotes, save: bool) -> Future[Any]:
        future: Future[Any] = Future()
        self._pending_saves += 1
        self._queue.put_command("save" if save else "discard", notes, future)
        return future

    # -- control (service threads) -----------------------------------------------------------------------
    def start(self, task: str, now_ns: int) -> tuple[bool, str]:
        """Open an episode whose frames start at the first instant every stream has a sample after now."""
        if not task.strip():
            return False, "no instruction: set the instruction parameter or publish on ~/instruction first"
        with self._lock:
            if self._closing:
                return False, "the recorder is shutting down"
            if self._state in ("opening", "recording", "stopping"):
                return False, f"cannot start while {self._state} (episode {self._episode_index})"
            previous = self._state
            self._state = "opening"
        shapes = self._wait_for_cameras()
        try:
            if isinstance(shapes, str):
                raise DatasetStateError(shapes)
            future: Future[Any] = Future()
            self._queue.put_command("start", (shapes, task), future)
            index = int(future.result())  # waits for saves still queued before it
        except DatasetError as err:
            with self._lock:
                self._last_error = str(err)
                self._state = previous if previous in ("idle", "error") else "idle"
                self._changed.notify_all()
            return False, str(err) if isinstance(shapes, str) else f"cannot start an episode: {err}"
        with self._lock:
            self._aligner = FrameAligner(self.config.alignment())
            self._gaps = GapTracker(self.config.gap_policy, float(self.config.dataset.fps))
            self._episode_start_ns = now_ns
            self._task = task
            self._state = "recording"
            self._episode_index = index
            self._part_frames = 0
            self._events_from = 0
            self._part_held = 0
            self._overruns = 0
            self._last_error = ""
            self._writer_failed = ""
            self._changed.notify_all()
        self._log(f"episode {index} started: {task!r}")
        return True, f"episode {index} started"

    def _wait_for_cameras(self) -> dict[str, tuple[int, int]] | str:
        deadline = time.monotonic() + self.config.start_timeout_s
        while True:
            with self._lock:
                missing = [c for c in self.config.cameras if c not in self._image_shapes]
                shapes = dict(self._image_shapes)
                closing = self._closing
            if not missing:
                return shapes
            if closing:
                return "the recorder is shutting down"
            if time.monotonic() > deadline:
                return (f"no image yet from cameras {missing} (waited {self.config.start_timeout_s:.0f} s): "
                        "check the camera topics")
            time.sleep(0.05)

    def stop(self, save: bool, now_ns: int, input_ended: bool = False) -> tuple[bool, str]:
        """Close the episode: frames up to ``now_ns`` are kept; save (encode + commit) or discard.

        ``input_ended``: no sample will arrive any more (the node stopped spinning at SIGINT). Waiting for
        late samples is then pointless and the watermark ``now_ns`` would be a false promise: a stream whose
        newest samples were still in flight would lend its older sample to frames whose other streams are
        newer (a 200 ms old state beside a fresh image). Only frames every stream has reached are kept.
        """
        return self._stop(save, now_ns, input_ended, "stop" if save else "discard")

    def _stop(self, save: bool, now_ns: int, input_ended: bool, reason: str) -> tuple[bool, str]:
        """:meth:`stop`; ``reason`` is how the episode's notes say it ended."""
        with self._lock:
            if self._state != "recording":
                return False, f"no episode is being recorded (state {self._state})"
            self._state = "stopping"
            self._stop_ns = now_ns
            index = self._episode_index
        if not input_ended:
            self._input_ended.wait(self.config.watermark_delay_s)  # let samples stamped before now_ns arrive
        with self._lock:
            if self._state != "stopping" or self._aligner is None:  # ended meanwhile (max_episode_s, gap_fail, error)
                notes = self._last_notes
                return False, f"episode {index} already ended ({notes.ended_by if notes else self._state})"
            ended = input_ended or self._input_ended.is_set()
            self._route(self._aligner.pop_ready(None if ended else now_ns))
            if self._aligner is None:  # the last frames ended it (gap_fail, disk full)
                return False, f"episode {index} ended: {self._last_error}"
            left_out = self._aligner.undecided(now_ns) if ended else 0
            future = self._end_locked(reason, save=save, left_out=left_out)
        try:
            result = future.result()
        except DatasetError as err:
            return False, str(err)
        return True, str(result)

    def status(self) -> RecorderStatus:
        with self._lock:
            stats = self._aligner.stats if self._aligner is not None else self._last_alignment
            detail = stats.summary() if stats is not None else ""
            open_episode = self._episode_index is not None
            episode_frames = self._part_frames if open_episode else 0
            state = self._state
            if state in ("idle", "error") and self._pending_saves:
                state = "saving"
            gaps = self._gaps.counts() if self._gaps is not None else {}
            writer = self._writer
            return RecorderStatus(
                state=state, episodes=self._episodes, total_frames=self._total_frames,
                episode_index=self._episode_index, episode_frames=episode_frames,
                episode_s=episode_frames / self.config.dataset.fps,
                dropped=stats.dropped if stats else 0, dropped_detail=detail, overruns=self._overruns,
                queued=self._queue.frames, last_error=self._last_error, last_saved=self._last_saved,
                alignment=stats, samples=dict(self._samples), pending_saves=self._pending_saves,
                spilled_frames=self._queue.frames_on_disk,
                encoder_backlog=writer.encoder_backlog() if writer is not None else 0, gaps=gaps,
                held_frames=self._gaps.held_frames if self._gaps is not None else 0,
                skew=self._aligner.skew() if self._aligner is not None else self._last_skew,
                last_notes=self._last_notes)

    def begin_close(self) -> None:
        """Shutdown is coming (the first SIGINT): refuse new episodes, stop waiting for late samples."""
        with self._lock:
            self._closing = True
        self._input_ended.set()

    def close(self, save_open_episode: bool, now_ns: int, input_ended: bool = False) -> str:
        """Save or discard an open episode, wait for every queued save, finalize and release the dataset.

        Idempotent and safe to call while a stop, a start or an automatic cut is in progress: the episode is
        saved exactly once. ``input_ended``: as in :meth:`stop` (a node closing after its executor stopped).
        """
        if input_ended:
            self._input_ended.set()
        message = ""
        with self._lock:
            self._closing = True
            # a start in progress finishes first (then its episode is closed like any other); a stop in
            # progress queues its save itself
            self._changed.wait_for(lambda: self._state not in ("opening", "stopping"), timeout=120)
            recording = self._state == "recording"
        if recording:
            _, message = self._stop(save_open_episode, now_ns, input_ended, "shutdown")
        if self._thread.is_alive():
            self._queue.put_command("close")
            self._queue.put_command("quit")
            self._thread.join()  # every queued save first: an episode is never dropped at shutdown
        self._queue.close()
        with self._lock:
            self._state = "closed"
        return message

    # -- writer thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            command, arg, future = self._queue.get()
            if command == "quit":
                return
            try:
                result = self._execute(command, arg)
            except BaseException as err:  # handed to the caller (or logged)
                if future is not None:
                    future.set_exception(err)
                elif not isinstance(err, DatasetError):
                    self._error_log(f"recorder writer: unexpected {type(err).__name__}: {err}")
                continue
            if future is not None:
                future.set_result(result)

    def _execute(self, command: str, arg: Any) -> Any:
        if command == "frame":
            return self._write_frame(*arg)
        if command == "warm":
            from wallx_ros.lerobot import datasets as lerobot_datasets

            lerobot_datasets.preload_dataset_api()  # the first start should not wait for imports
            self._open_existing()
            with self._lock:
                if self._state == "starting":
                    self._state = "idle" if self._writer is not None or self._last_error == "" else "error"
            return None
        if command == "start":
            return self._start_writer_episode(arg)
        if command in ("save", "discard"):
            try:
                return self._finish_writer_episode(command == "save", arg)
            finally:
                with self._lock:
                    self._pending_saves -= 1
                    self._changed.notify_all()
        if command == "close":
            if self._writer is not None:
                self._writer.close()
            return None
        raise ValueError(f"unknown recorder command {command!r}")

    def _start_writer_episode(self, arg: Any) -> int:
        """Open the episode in the writer: ``(camera shapes, task)`` from start(), or a task after a cut."""
        if isinstance(arg, tuple):
            shapes = arg[0]
            opened = self._writer or self._open(shapes)
            stored = {c.name: (c.height, c.width) for c in opened.spec.cameras}
            wrong = {c: shapes[c] for c in stored if shapes.get(c) != stored[c]}
            if wrong:
                raise DatasetSpecError(
                    f"cameras now deliver (height, width) {wrong}, the dataset {opened.spec.root} stores "
                    f"{ {c: stored[c] for c in wrong} }: fix the camera resolution or record into a new root")
        if self._writer is None:
            raise DatasetStateError("the dataset is not open")
        try:
            index = self._writer.start_episode()
        except DatasetError as err:
            if not isinstance(arg, tuple):  # a cut: the capture side is told through the failure flag
                self._fail_writer_episode(f"cannot start the next episode: {err}")
            raise
        self._writer_episode = True
        return index

    def _finish_writer_episode(self, save: bool, notes: EpisodeNotes) -> str:
        writer = self._writer
        if writer is None or not writer.episode_open:
            with self._lock:
                self._last_notes = notes
            return f"episode {notes.index}: nothing to {'save' if save else 'discard'} ({notes.ended_by})"
        self._writer_episode = False
        if not save:
            frames = writer.discard_episode()
            with self._lock:
                self._last_notes = notes
            msg = f"episode {notes.index} discarded ({frames} frames)"
            self._log(msg)
            return msg
        try:
            report = writer.save_episode()
        except DatasetError as err:
            with self._lock:
                self._last_error = str(err)
                self._last_notes = notes
                if self._state not in ("recording", "stopping", "opening"):
                    self._state = "idle" if writer.ready else "error"
            self._error_log(f"episode {notes.index}: {err}")
            raise
        with self._lock:
            self._episodes, self._total_frames = writer.num_episodes, writer.total_frames
            self._last_saved, self._last_notes = report, notes
            dropped = self._last_alignment.dropped if self._last_alignment is not None else 0
            episodes = self._episodes
        msg = (f"episode {report.index} saved: {report.frames} frames ({report.duration_s:.1f} s), ended by "
               f"{notes.ended_by}, {notes.held_frames} held; encode {report.encode_s:.2f} s (of which waiting for the "
               f"video encoders {report.encode_tail_s:.2f} s), commit {report.commit_s:.2f} s; dataset has {episodes} "
               "episodes")
        details = notes.describe()
        if details:
            msg += f" [{details}]"
        if dropped and notes.ended_by in ("stop", "shutdown"):
            msg += f" [alignment: {self._last_alignment.summary() if self._last_alignment else ''}]"
        self._log(msg)
        return msg

    def _fail_writer_episode(self, error: str) -> None:
        with self._lock:
            self._writer_failed = error

    def _write_frame(self, frame: AlignedFrame[Any], task: str) -> None:
        writer = self._writer
        if writer is None or not writer.episode_open:
            return
        images = {cam: frame.values[cam] for cam in self.config.cameras}
        ages = [frame.age_s(s) for s in writer.spec.sample_age_streams] if writer.spec.sample_age_streams else None
        try:
            writer.add_frame(images, frame.values[STATE_STREAM], frame.values[ACTION_STREAM], task, ages)
        except DatasetWriteError as err:  # disk full / I/O: this episode cannot be saved any more
            dropped = writer.discard_episode()
            self._fail_writer_episode(f"{err} (episode discarded, {dropped} frames)")
        except DatasetError as err:  # a frame LeRobot refuses (e.g. a camera changed size): end the episode here
            self._fail_writer_episode(f"frame refused, the episode ends before it: {err}")
            if writer.episode_frames:
                with contextlib.suppress(DatasetError):
                    report = writer.save_episode()
                    with self._lock:
                        self._episodes, self._total_frames = writer.num_episodes, writer.total_frames
                        self._last_saved = report
                    self._log(f"episode {report.index} saved up to the refused frame: {report.frames} frames")
            else:
                writer.discard_episode()

    def _spec_with_sizes(self, shapes: dict[str, tuple[int, int]]) -> DatasetSpec:
        cams = tuple(CameraSpec(c, *shapes[c]) for c in self.config.cameras)
        return replace(self.config.dataset, cameras=cams)

    def _open(self, shapes: dict[str, tuple[int, int]]) -> DatasetWriter:
        writer = DatasetWriter(self._spec_with_sizes(shapes), log=self._log)
        self._writer = writer
        with self._lock:
            self._episodes, self._total_frames = writer.num_episodes, writer.total_frames
        self._log(f"dataset {writer.spec.root} ({writer.spec.repo_id}): {writer.recovery.summary()}")
        return writer

    def _open_existing(self) -> None:
        """Open a dataset that already exists at start-up (camera sizes come from its info.json)."""
        info_path = Path(self.config.dataset.root) / "meta" / "info.json"
        if not info_path.is_file():
            return
        import json

        try:
            feats = json.loads(info_path.read_text())["features"]
            shapes = {c: tuple(feats[f"observation.images.{c}"]["shape"][:2]) for c in self.config.cameras}
            self._open({c: (int(h), int(w)) for c, (h, w) in shapes.items()})
        except (KeyError, ValueError, TypeError, OSError) as err:
            self._log(f"dataset {info_path.parent.parent} is opened at the first start ({err!r})")
        except DatasetError as err:
            with self._lock:
                self._last_error = str(err)
            self._error_log(f"dataset {self.config.dataset.root}: {err}")

