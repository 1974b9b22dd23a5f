"""One class that owns a LeRobot v3 dataset on disk and writes episodes through LeRobot's own API.

``DatasetWriter(spec)`` creates the dataset (``LeRobotDataset.create``) or reopens it to append
(LeRobot's resume path), after bringing the folder back to its last commit (see ``recovery``). Then:
``start_episode()``, ``add_frame(...)`` per frame, and ``save_episode()`` (LeRobot ``save_episode`` +
``finalize``, a journal commit, and a reopen so the next episode goes to new files) or
``discard_episode()`` (``clear_episode_buffer``). ``close()`` discards an unsaved episode and finalizes.

Guarantees: a SIGKILL at any moment loses at most the episode not yet committed, and every committed
episode stays loadable by ``LeRobotDataset``; a failed save (disk full, I/O error, encoder failure) raises
:class:`DatasetWriteError` after the folder was brought back to its last commit, and the writer stays
usable once the cause is gone. Not thread-safe: call it from one thread.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.dataset.errors import (
    DatasetError,
    DatasetFrameError,
    DatasetSpecError,
    DatasetStateError,
    DatasetWriteError,
)
from wallx_ros.dataset.recovery import CommitJournal, RecoveryReport
from wallx_ros.dataset.spec import SAMPLE_AGE_KEY, DatasetSpec, spec_mismatches
from wallx_ros.dataset.video_spool import SpoolVideoEncoder, VideoEncoding
from wallx_ros.lerobot import datasets as lerobot_datasets

__all__ = ["DatasetWriter", "EpisodeReport"]

_LOG = logging.getLogger("wallx_ros.dataset")


@dataclass(frozen=True)
class EpisodeReport:
    """One saved episode: its index, length and how long saving took (encode = LeRobot save_episode, which
    includes ``encode_tail_s``: waiting for the background video encoders to finish the episode)."""

    index: int
    frames: int
    duration_s: float
    encode_s: float
    commit_s: float
    tasks: tuple[str, ...]
    encode_tail_s: float = 0.0


class DatasetWriter:
    """Writes episodes of one LeRobot v3 dataset (see module doc)."""

    def __init__(self, spec: DatasetSpec, log: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self._log = log or _LOG.info
        self._journal = CommitJournal(spec.root)
        self._ds: Any = None
        self._spool: SpoolVideoEncoder | None = None
        self._episode_open = False
        self._episode_frames = 0
        self._episode_tasks: set[str] = set()
        self._episodes = 0
        self._frames = 0
        self._next_space_check = 0
        self._closed = False
        self._journal.lock()
        try:
            self.recovery = self._open()
        except BaseException:
            self._journal.unlock()
            raise

    # -- state --------------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        """Committed episodes in the dataset."""
        return self._episodes

    @property
    def total_frames(self) -> int:
        """Committed frames in the dataset."""
        return self._frames

    @property
    def episode_open(self) -> bool:
        return self._episode_open

    @property
    def episode_frames(self) -> int:
        """Frames added to the open episode so far."""
        return self._episode_frames

    def encoder_backlog(self) -> int:
        """Frames spooled to disk but not yet encoded (the slowest camera; 0 without streaming_encoding). A
        producer without a deadline (the bag converter) waits while it is high, to bound the spool's size."""
        return self._spool.backlog() if self._spool is not None else 0

    @property
    def spool_dir(self) -> Path:
        """Where frames wait for the video encoders (cleared when the dataset is opened after a kill)."""
        return self._journal.state_dir / "spool"

    @property
    def ready(self) -> bool:
        """False after a failure that could not be repaired yet (the next start_episode retries)."""
        return self._ds is not None

    # -- opening ------------------------------------------------------------------------------------------
    def _clear_spool(self) -> None:
        """Frames spooled for an episode that was never saved (the process was killed): nothing can use them."""
        spool = self.spool_dir
        if not spool.is_dir():
            return
        size = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())
        shutil.rmtree(spool, ignore_errors=True)
        if size:
            self._log(f"dataset {self.spec.root}: removed {size / 1e6:.1f} MB of spooled frames of an episode that "
                      "was not saved (an interrupted run)")

    def _open(self) -> RecoveryReport:
        try:
            self._clear_spool()
            report = self._journal.recover()
        except OSError as err:
            raise DatasetWriteError(f"cannot repair dataset {self.spec.root}: {err}") from err
        if report.repaired or report.notes:
            self._log(f"dataset {self.spec.root}: {report.summary()}")
        spec = self.spec
        if report.fresh:
            try:
                self._ds = lerobot_datasets.create_dataset(
                    repo_id=spec.repo_id, root=spec.root, fps=spec.fps, features=spec.features(),
                    robot_type=spec.robot_type, use_videos=spec.use_videos, vcodec=self._vcodec(),
                    image_writer_threads=spec.image_writer_threads, streaming_encoding=self._spooled)
                self._use_spool()
                self._journal.commit(0, 0)
            except OSError as err:
                raise DatasetWriteError(f"cannot create dataset {spec.root}: {err}") from err
            self._episodes, self._frames = 0, 0
            return report
        info = json.loads((spec.root / "meta" / "info.json").read_text())
        problems = spec_mismatches(spec, info)
        if problems:
            raise DatasetSpecError(
                f"dataset {spec.root} exists with other settings: {'; '.join(problems)}. "
                "Record into a new root (or repo_id) or configure the same cameras, joints and fps")
        if info.get("robot_type") and spec.robot_type and info["robot_type"] != spec.robot_type:
            self._log(f"dataset {spec.root} was recorded as robot_type {info['robot_type']!r}, "
                      f"configured {spec.robot_type!r}: keeping the dataset's")
        self._reopen()
        return report

    def _vcodec(self) -> str | None:
        return self.spec.video_codec if self.spec.use_videos else None

    @property
    def _spooled(self) -> bool:
        return self.spec.streaming_encoding and self.spec.use_videos and bool(self.spec.cameras)

    def _use_spool(self) -> None:
        """Replace LeRobot's streaming encoder by the spool encoder (same codec settings)."""
        if not self._spooled:
            self._spool = None
            return
        encoding = VideoEncoding(**lerobot_datasets.spool_video_encoding(self._ds), nice=self.spec.encoder_nice)
        self._spool = SpoolVideoEncoder(self.spool_dir, self.spec.fps, encoding)
        lerobot_datasets.use_spool_encoder(self._ds, self._spool)

    def _reopen(self) -> None:
        """Open the committed dataset to append (LeRobot's resume path: new data/meta/video files)."""
        spec = self.spec
        self._ds = None
        try:
            ds = lerobot_datasets.open_dataset(
                repo_id=spec.repo_id, root=spec.root, vcodec=self._vcodec(),
                image_writer_threads=spec.image_writer_threads, streaming_encoding=self._spooled,
                cache_dir=self._journal.cache_dir)
        except OSError as err:
            raise DatasetWriteError(f"cannot open dataset {spec.root}: {err}") from err
        except Exception as err:  # LeRobot / datasets raise many types for a folder they cannot load
            raise DatasetWriteError(
                f"LeRobot cannot load {spec.root} after recovery ({type(err).__name__}: {err})") from err
        self._journal.prune_cache(lerobot_datasets.dataset_cache_files(ds))
        self._ds = ds
        self._use_spool()
        self._episodes = int(ds.meta.total_episodes)
        self._frames = int(ds.meta.total_frames)

    def _repair(self) -> None:
        """After a failure: forget the LeRobot object, bring the folder back to its last commit, reopen."""
        old, self._ds = self._ds, None
        if old is not None:
            try:
                old.stop_image_writer()
            except Exception as err:  # the object is being dropped; only log
                self._log(f"stopping the old image writer failed: {err}")
        try:
            self.recovery = self._open()
        except (DatasetError, OSError) as err:
            self._log(f"dataset {self.spec.root} could not be reopened yet: {err}")

    # -- episodes -----------------------------------------------------------------------------------------
    def start_episode(self) -> int:
        """Open a new episode; returns its index. Retries a pending repair first."""
        self._check_open()
        if self._episode_open:
            raise DatasetStateError(f"episode {self._episodes} is already open: save or discard it first")
        if self._ds is None:
            self._repair()
            if self._ds is None:
                raise DatasetWriteError(f"dataset {self.spec.root} is not usable yet (see the previous error)")
        self._check_free_space()
        self._episode_open = True
        self._episode_frames = 0
        self._episode_tasks = set()
        self._next_space_check = self.spec.fps
        return self._episodes

    def add_frame(self, images: Mapping[str, npt.NDArray[np.uint8]], state: npt.ArrayLike, action: npt.ArrayLike,
                  task: str, sample_age_s: npt.ArrayLike | None = None) -> None:
        """Append one frame to the open episode: camera name -> (H, W, 3) uint8 RGB, joint vectors, task text,
        and (datasets with ``sample_age_streams``) each stream's sample age in seconds."""
        if not self._episode_open:
            raise DatasetStateError("no episode is open: call start_episode() first")
        frame = self._frame(images, state, action, task)
        if self.spec.sample_age_streams:
            ages = np.asarray(sample_age_s if sample_age_s is not None else (), dtype=np.float32)
            if ages.shape != (len(self.spec.sample_age_streams),) or not np.all(np.isfinite(ages)):
                raise DatasetFrameError(f"{SAMPLE_AGE_KEY}: need {len(self.spec.sample_age_streams)} finite ages "
                                        f"({list(self.spec.sample_age_streams)}), got {ages.tolist()}")
            frame[SAMPLE_AGE_KEY] = ages
        if self._episode_frames >= self._next_space_check:
            self._next_space_check = self._episode_frames + self.spec.fps
            self._check_free_space()
        try:
            self._ds.add_frame(frame)
        except OSError as err:
            raise DatasetWriteError(f"writing frame {self._episode_frames} failed: {err}") from err
        except ValueError as err:
            raise DatasetFrameError(f"LeRobot rejected the frame: {err}") from err
        self._episode_frames += 1
        self._episode_tasks.add(task)

    def _frame(self, images: Mapping[str, npt.NDArray[np.uint8]], state: npt.ArrayLike, action: npt.ArrayLike,
               task: str) -> dict[str, Any]:
        spec = self.spec
        frame: dict[str, Any] = {}
        missing = [c.name for c in spec.cameras if c.name not in images]
        extra = sorted(set(images) - {c.name for c in spec.cameras})
        if missing or extra:
            raise DatasetFrameError(f"frame cameras: missing {missing}, unknown {extra}")
        for cam in spec.cameras:
            img = np.asarray(images[cam.name])
            if img.dtype != np.uint8 or img.shape != (cam.height, cam.width, 3):
                raise DatasetFrameError(
                    f"camera {cam.name}: got {img.dtype} {img.shape}, the dataset stores uint8 "
                    f"({cam.height}, {cam.width}, 3); resize the stream or record into a dataset of that size")
            frame[cam.key] = img
        for key, names, values in (("observation.state", spec.state_names, state),
                                   ("action", spec.action_names, action)):
            vec = np.asarray(values, dtype=np.float32)
            if vec.shape != (len(names),):
                raise DatasetFrameError(f"{key}: got shape {vec.shape}, the dataset has {len(names)} joints")
            if not np.all(np.isfinite(vec)):
                bad = [names[i] for i in np.flatnonzero(~np.isfinite(vec))]
                raise DatasetFrameError(f"{key}: non-finite values for {bad}")
            frame[key] = vec
        if not isinstance(task, str) or not task.strip():
            raise DatasetFrameError("task is empty: give the instruction of the episode (LeRobot's 'task')")
        frame["task"] = task
        return frame

    def save_episode(self) -> EpisodeReport:
        """Encode and commit the open episode; afterwards it survives any crash."""
        if not self._episode_open:
            raise DatasetStateError("no episode is open: nothing to save")
        if self._episode_frames == 0:
            self.discard_episode()
            raise DatasetStateError("the episode has no frames: nothing saved")
        index, frames = self._episodes, self._episode_frames
        t0 = time.monotonic()
        tail = 0.0
        try:
            lerobot_datasets.save_episode(self._ds)
            tail = self._spool.last_finish_wait_s if self._spool is not None else 0.0
            t1 = time.monotonic()
            self._ds.finalize()
            lerobot_datasets.stop_image_writer(self._ds)
            self._journal.commit(index + 1, self._frames + frames)
        except Exception as err:
            self._episode_open = False
            self._repair()
            if isinstance(err, DatasetWriteError):
                raise
            raise DatasetWriteError(
                f"saving episode {index} ({frames} frames) failed: {type(err).__name__}: {err}. The dataset was "
                f"brought back to its {self._episodes} saved episodes" + (
                    "" if self._ds is not None else "; it is reopened at the next start")) from err
        self._episodes, self._frames = index + 1, self._frames + frames
        self._episode_open = False
        shutil.rmtree(self.spec.root / "images", ignore_errors=True)  # encoded: only empty folders are left
        self._reopen_after_commit()
        return EpisodeReport(index=index, frames=frames, duration_s=frames / self.spec.fps, encode_s=t1 - t0,
                             commit_s=time.monotonic() - t1, tasks=tuple(sorted(self._episode_tasks)),
                             encode_tail_s=tail)

    def _reopen_after_commit(self) -> None:
        try:
            self._reopen()
        except DatasetError as err:  # committed already; the next start retries
            self._log(f"episode saved, but reopening {self.spec.root} failed: {err}")

    def discard_episode(self) -> int:
        """Drop the open episode (LeRobot ``clear_episode_buffer``); returns the frames dropped."""
        if not self._episode_open:
            raise DatasetStateError("no episode is open: nothing to discard")
        frames = self._episode_frames
        self._episode_open = False
        self._episode_frames = 0
        if frames and self._ds is not None:
            try:
                self._ds.clear_episode_buffer()  # waits for the image writer
                # LeRobot deletes the PNGs of image features only; those of video features stay behind
                shutil.rmtree(self.spec.root / "images", ignore_errors=True)
            except Exception as err:  # fall back to recovery, which moves the frames aside
                self._log(f"clearing the episode buffer failed ({err}); repairing the dataset folder")
                self._repair()
        return frames

    def close(self) -> None:
        """Discard an unsaved episode, finalize, release the dataset. Idempotent."""
        if self._closed:
            return
        try:
            if self._episode_open:
                dropped = self.discard_episode()
                self._log(f"closing {self.spec.root}: discarded the unsaved episode ({dropped} frames)")
            if self._ds is not None:
                self._ds.finalize()
                lerobot_datasets.stop_image_writer(self._ds)
        finally:
            self._ds = None
            self._closed = True
            self._journal.unlock()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DatasetStateError("the writer is closed")

    def _check_free_space(self) -> None:
        if self.spec.min_free_mb <= 0:
            return
        try:
            free_mb = shutil.disk_usage(self.spec.root).free / 1e6
        except OSError as err:
            raise DatasetWriteError(f"cannot check free space of {self.spec.root}: {err}") from err
        if free_mb < self.spec.min_free_mb or not math.isfinite(free_mb):
            raise DatasetWriteError(
                f"only {free_mb:.0f} MB free on the disk of {self.spec.root} (min_free_mb {self.spec.min_free_mb:.0f}):"
                " free some space; saved episodes are intact")
