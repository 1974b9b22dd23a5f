"""Live episode recording, ROS-free: stamped samples in, fixed-fps frames out to a DatasetWriter thread.

The recorder node (and anything else that receives camera images, joint states and commands) calls
``push_image`` / ``push_state`` / ``push_action`` from any thread, ``tick(now_ns)`` periodically, and
``start`` / ``stop`` from a service. While an episode is open, samples feed a
:class:`~wallx_ros.core.frame_alignment.FrameAligner` (rule "latest sample at or before the frame
time, within max age"); final frames go through a bounded queue to one writer thread that owns the
:class:`~wallx_ros.dataset.writer.DatasetWriter` (LeRobot's add_frame writes PNGs and save_episode
encodes videos: neither may block the caller).

Clock: stamps and ``now_ns`` must be on the same clock (the node's ROS clock; sim time works).
A frame is final once every stream has a newer sample, or ``now - watermark_delay_s`` has passed it
(a stalled stream then makes frames stale: they are dropped and counted, never filled in).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import NonMonotonicStampError
from wallx_ros.core.frame_alignment import AlignedFrame, AlignmentConfig, AlignmentStats, FrameAligner, StreamSpec
from wallx_ros.dataset.errors import DatasetError, DatasetSpecError, DatasetStateError, DatasetWriteError
from wallx_ros.dataset.spec import CameraSpec, DatasetSpec
from wallx_ros.dataset.writer import DatasetWriter, EpisodeReport

__all__ = ["ACTION_STREAM", "STATE_STREAM", "Recorder", "RecorderConfig", "RecorderStatus"]

STATE_STREAM = "observation.state"
ACTION_STREAM = "action"
_LOG = logging.getLogger("wallx_ros.recorder")
_NS = 1_000_000_000


@dataclass(frozen=True)
class RecorderConfig:
    """Dataset settings and timing. The camera sizes in ``dataset`` are placeholders: the recorder uses
    those of the existing dataset, or of the first images when it creates one."""

    dataset: DatasetSpec
    max_age_s: float = 0.1
    action_max_age_s: float = 0.5
    watermark_delay_s: float = 2.0
    max_queued_frames: int = 90
    max_episode_s: float = 0.0
    start_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_age_s", "action_max_age_s", "watermark_delay_s", "max_episode_s", "start_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise DatasetSpecError(f"{name} must be finite and >= 0, got {value}")
        if self.max_age_s <= 0 or self.action_max_age_s <= 0:
            raise DatasetSpecError("max_age_s and action_max_age_s must be > 0")
        if self.max_queued_frames < 1:
            raise DatasetSpecError(f"max_queued_frames must be >= 1, got {self.max_queued_frames}")

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.dataset.cameras)


@dataclass(frozen=True)
class RecorderStatus:
    """A snapshot for logs and /diagnostics."""

    state: str  # starting | idle | recording | saving | error
    episodes: int
    total_frames: int
    episode_index: int | None
    episode_frames: int
    episode_s: float
    dropped: int
    dropped_detail: str
    overruns: int
    queued: int
    last_error: str
    last_saved: EpisodeReport | None
    alignment: AlignmentStats | None = None
    samples: dict[str, int] = field(default_factory=dict)


class Recorder:
    """See module doc. Thread-safe."""

    def __init__(self, config: RecorderConfig, log: Callable[[str], None] | None = None,
                 error_log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._log = log or _LOG.info
        self._error_log = error_log or _LOG.error
        self._lock = threading.Lock()
        self._aligner: FrameAligner[Any] | None = None
        self._episode_start_ns = 0
        self._task = ""
        self._image_shapes: dict[str, tuple[int, int]] = {}
        self._samples = dict.fromkeys((*config.cameras, STATE_STREAM, ACTION_STREAM), 0)
        self._state = "starting"
        self._episode_index: int | None = None
        self._episode_frames = 0
        self._overruns = 0
        self._last_error = ""
        self._last_saved: EpisodeReport | None = None
        self._episodes = 0
        self._total_frames = 0
        self._last_alignment: AlignmentStats | None = None
        self._writer: DatasetWriter | None = None
        self._queue: queue.Queue[tuple[str, Any, Future[Any] | None]] = queue.Queue()
        self._queued_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wallx_recorder_writer", daemon=True)
        self._thread.start()
        self._call("warm", None, wait=False)

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
        """Hand final frames to the writer; stop (and save) an episode that reached max_episode_s."""
        auto_stop = False
        with self._lock:
            if self._aligner is None:
                return
            frames = self._aligner.pop_ready(now_ns - round(self.config.watermark_delay_s * _NS))
            self._enqueue(frames)
            limit = self.config.max_episode_s
            auto_stop = limit > 0 and self._episode_frames >= round(limit * self.config.dataset.fps)
        if auto_stop:
            threading.Thread(target=self.stop, args=(True, now_ns), name="wallx_recorder_autostop",
                             daemon=True).start()

    def _enqueue(self, frames: list[AlignedFrame[Any]]) -> None:
        """Under the lock: queue frames for the writer, dropping (and counting) on overrun. An episode ends at
        exactly ``max_episode_s``: frames the watermark releases while it is being saved are not added to it."""
        limit = round(self.config.max_episode_s * self.config.dataset.fps)
        for frame in frames:
            if limit > 0 and self._episode_frames >= limit:
                break
            if self._queued_frames >= self.config.max_queued_frames:
                self._overruns += 1
                continue
            self._queued_frames += 1
            self._episode_frames += 1
            self._queue.put(("frame", (frame, self._task), None))

    # -- control (service threads) -----------------------------------------------------------------------
    def start(self, task: str, now_ns: int) -> tuple[bool, str]:
        """Open an episode whose frames start at the first instant every stream has a sample after now."""
        if not task.strip():
            return False, "no instruction: set the instruction parameter or publish on ~/instruction first"
        with self._lock:
            if self._state in ("recording", "saving"):
                return False, f"cannot start while {self._state} (episode {self._episode_index})"
        shapes = self._wait_for_cameras()
        if isinstance(shapes, str):
            return False, shapes
        try:
            index = int(self._call("start", shapes))
        except DatasetError as err:
            with self._lock:
                self._last_error = str(err)
            return False, f"cannot start an episode: {err}"
        cfg = self.config
        streams = [StreamSpec(c, cfg.max_age_s) for c in cfg.cameras]
        streams += [StreamSpec(STATE_STREAM, cfg.max_age_s), StreamSpec(ACTION_STREAM, cfg.action_max_age_s)]
        with self._lock:
            self._aligner = FrameAligner(AlignmentConfig(fps=float(cfg.dataset.fps), streams=tuple(streams)))
            self._episode_start_ns = now_ns
            self._task = task
            self._state = "recording"
            self._episode_index = index
            self._episode_frames = 0
            self._overruns = 0
            self._last_error = ""
        self._log(f"episode {index} started: {task!r}")
        return True, f"episode {index} started"

    def _wait_for_cameras(self) -> dict[str, tuple[int, int]] | str:
        deadline = time.monotonic() + self.config.start_timeout_s
        while True:
            with self._lock:
                missing = [c for c in self.config.cameras if c not in self._image_shapes]
                shapes = dict(self._image_shapes)
            if not missing:
                return shapes
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
        with self._lock:
            if self._state != "recording":
                return False, f"no episode is being recorded (state {self._state})"
            self._state = "saving"
        if not input_ended:
            time.sleep(self.config.watermark_delay_s)  # let samples stamped before now_ns arrive
        left_out = 0
        with self._lock:
            assert self._aligner is not None
            self._enqueue(self._aligner.pop_ready(None if input_ended else now_ns))
            if input_ended:
                left_out = self._aligner.undecided(now_ns)
            self._last_alignment = self._aligner.stats
            self._aligner = None
            index = self._episode_index
        try:
            result = self._call("save" if save else "discard", None)
        except DatasetError as err:
            with self._lock:
                self._last_error = str(err)
                self._state = "idle" if self._writer is not None and self._writer.ready else "error"
                self._episode_index = None
            self._error_log(f"episode {index}: {err}")
            return False, str(err)
        with self._lock:
            self._state = "idle"
            self._episode_index = None
            dropped = self._last_alignment.dropped if self._last_alignment else 0
            detail = self._last_alignment.summary() if self._last_alignment else ""
            overruns = self._overruns
            if isinstance(result, EpisodeReport):
                self._last_saved = result
            episodes = self._episodes
        if isinstance(result, EpisodeReport):
            msg = (f"episode {result.index} saved: {result.frames} frames ({result.duration_s:.1f} s), "
                   f"{dropped} dropped by alignment, {overruns} by writer overrun; encode {result.encode_s:.2f} s, "
                   f"commit {result.commit_s:.2f} s; dataset has {episodes} episodes [alignment: {detail}]")
            if left_out:
                msg += (f"; {left_out} frames after the slowest stream's last sample left out "
                        "(input ended before they were complete)")
        else:
            msg = f"episode {index} discarded ({result} frames)"
        self._log(msg)
        return True, msg

    def status(self) -> RecorderStatus:
        with self._lock:
            stats = self._aligner.stats if self._aligner is not None else self._last_alignment
            detail = stats.summary() if stats is not None else ""
            # between episodes the counter still holds the saved episode's frames: report the open episode only
            episode_frames = self._episode_frames if self._episode_index is not None else 0
            return RecorderStatus(
                state=self._state, episodes=self._episodes, total_frames=self._total_frames,
                episode_index=self._episode_index, episode_frames=episode_frames,
                episode_s=episode_frames / self.config.dataset.fps,
                dropped=stats.dropped if stats else 0, dropped_detail=detail, overruns=self._overruns,
                queued=self._queued_frames, last_error=self._last_error, last_saved=self._last_saved,
                alignment=stats, samples=dict(self._samples))

    def close(self, save_open_episode: bool, now_ns: int, input_ended: bool = False) -> str:
        """Save or discard an open episode, then finalize and release the dataset. Idempotent.
        ``input_ended``: as in :meth:`stop` (a node closing after its executor stopped passes True)."""
        message = ""
        with self._lock:
            recording = self._state == "recording"
        if recording:
            _, message = self.stop(save_open_episode, now_ns, input_ended)
        if self._thread.is_alive():
            with contextlib.suppress(DatasetError):
                self._call("close", None)
            self._stop.set()
            self._queue.put(("quit", None, None))
            self._thread.join(timeout=60)
        return message

    # -- writer thread -----------------------------------------------------------------------------------
    def _call(self, command: str, arg: Any, wait: bool = True) -> Any:
        future: Future[Any] = Future()
        self._queue.put((command, arg, future))
        if not wait:
            return None
        return future.result()

    def _run(self) -> None:
        while True:
            command, arg, future = self._queue.get()
            if command == "quit":
                return
            try:
                result = self._execute(command, arg)
            except BaseException as err:  # handed to the caller (or logged for frames)
                if future is not None:
                    future.set_exception(err)
                elif not isinstance(err, DatasetError):
                    self._error_log(f"recorder writer: unexpected {type(err).__name__}: {err}")
                continue
            if future is not None:
                future.set_result(result)

    def _execute(self, command: str, arg: Any) -> Any:
        if command == "frame":
            with self._lock:
                self._queued_frames -= 1
            return self._write_frame(*arg)
        if command == "warm":
            from wallx_ros.policy import lerobot_compat

            lerobot_compat.preload_dataset_api()  # the first start should not wait for imports
            self._open_existing()
            with self._lock:
                if self._state == "starting":
                    self._state = "idle" if self._writer is not None or self._last_error == "" else "error"
            return None
        if command == "start":
            opened = self._writer or self._open(arg)
            stored = {c.name: (c.height, c.width) for c in opened.spec.cameras}
            wrong = {c: arg[c] for c in stored if arg.get(c) != stored[c]}
            if wrong:
                raise DatasetSpecError(
                    f"cameras now deliver (height, width) {wrong}, the dataset {opened.spec.root} stores "
                    f"{ {c: stored[c] for c in wrong} }: fix the camera resolution or record into a new root")
            return opened.start_episode()
        writer = self._writer
        if command == "save":
            if writer is None:
                raise DatasetStateError("the dataset is not open")
            report = writer.save_episode()
            self._sync_counts(writer)
            return report
        if command == "discard":
            if writer is None or not writer.episode_open:
                return 0
            return writer.discard_episode()
        if command == "close":
            if writer is not None:
                writer.close()
            return None
        raise ValueError(f"unknown recorder command {command!r}")

    def _write_frame(self, frame: AlignedFrame[Any], task: str) -> None:
        writer = self._writer
        if writer is None or not writer.episode_open:
            return
        images = {cam: frame.values[cam] for cam in self.config.cameras}
        try:
            writer.add_frame(images, frame.values[STATE_STREAM], frame.values[ACTION_STREAM], task)
        except DatasetWriteError as err:  # disk full / I/O: this episode cannot be saved any more
            dropped = writer.discard_episode()
            with self._lock:
                self._last_error = f"{err} (episode discarded, {dropped} frames)"
                self._state = "error"
                self._aligner = None
                self._episode_index = None
            self._error_log(f"recording stopped: {self._last_error}")
        except DatasetError as err:  # one bad frame (e.g. a camera changed size): skip it, report
            with self._lock:
                self._last_error = str(err)
                self._overruns += 1
            self._error_log(f"frame skipped: {err}")

    def _sync_counts(self, writer: DatasetWriter) -> None:
        with self._lock:
            self._episodes = writer.num_episodes
            self._total_frames = writer.total_frames

    def _spec_with_sizes(self, shapes: dict[str, tuple[int, int]]) -> DatasetSpec:
        cams = tuple(CameraSpec(c, *shapes[c]) for c in self.config.cameras)
        return replace(self.config.dataset, cameras=cams)

    def _open(self, shapes: dict[str, tuple[int, int]]) -> DatasetWriter:
        writer = DatasetWriter(self._spec_with_sizes(shapes), log=self._log)
        self._writer = writer
        self._sync_counts(writer)
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
