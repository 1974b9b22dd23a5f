"""Video encoding that capture never waits for: raw frames spooled to disk, encoded behind in worker processes.

LeRobot's own streaming encoder keeps a bounded in-memory queue per camera and encodes in threads of the
recording process: when the encoder falls behind it drops frames (and those threads compete with capture
for the GIL and the cores). :class:`SpoolVideoEncoder` has the same interface (LeRobot's dataset calls
``start_episode`` / ``feed_frame`` / ``finish_episode`` / ``cancel_episode``;
``wallx_ros.lerobot.datasets.use_spool_encoder`` installs it),
but ``feed_frame`` only appends the raw frame to a chunk file on disk: capture is bounded by the disk, never
by the CPU. One encoder process per camera (:mod:`wallx_ros.dataset.video_encode_worker`, at a lower CPU
priority when recording live) encodes chunk after chunk and deletes them, so the spool holds only the
backlog; the cameras of an episode are encoded in parallel. ``finish_episode`` waits for the backlog (the
encode may finish after the episode: ``last_finish_wait_s`` says how long that took).

Spool folders live in the dataset's state folder (``recovery``), which the next start clears after a kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from wallx_ros.dataset.errors import DatasetWriteError

__all__ = ["SpoolVideoEncoder", "VideoEncoding"]

_CHUNK_BYTES = 8 << 20  # ~9 frames of 640x480: the worker's progress granularity
_WORKER = "wallx_ros.dataset.video_encode_worker"
# SVT-AV1 prints a banner on stderr for every encoder it opens; SVT_LOG=1 keeps its errors only
_WORKER_ENV = {"SVT_LOG": "1", "OMP_NUM_THREADS": "1"}


@dataclass(frozen=True)
class VideoEncoding:
    """How LeRobot would encode a camera (resolved codec, pixel format, codec options as strings), the stats
    quantiles it computes, and the niceness of the encoder processes (recording: > 0 so capture keeps the CPU)."""

    vcodec: str
    pix_fmt: str
    options: dict[str, str]
    quantiles: tuple[tuple[str, float], ...]
    nice: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)


class _CameraSpool:
    """One camera of one episode: the chunk files and the worker process encoding them."""

    def __init__(self, key: str, folder: Path, fps: int, encoding: VideoEncoding) -> None:
        self.key = key
        self.folder = folder
        self.fps = fps
        self.encoding = encoding
        self.video_path = folder / "episode.mp4"
        self.frames = 0
        self.encoded = 0
        self.result: dict[str, Any] | None = None
        self.error = ""
        self._done = threading.Event()
        self._chunk: IO[bytes] | None = None
        self._chunk_index = 0
        self._chunk_frames = 0
        self._per_chunk = 1
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: deque[str] = deque(maxlen=20)
        folder.mkdir(parents=True, exist_ok=True)

    def _start(self, height: int, width: int) -> None:
        self._per_chunk = max(1, min(30, _CHUNK_BYTES // (height * width * 3)))
        args = {"dir": str(self.folder), "video": str(self.video_path), "height": height, "width": width,
                "fps": self.fps, "vcodec": self.encoding.vcodec, "pix_fmt": self.encoding.pix_fmt,
                "options": self.encoding.options, "quantiles": [list(q) for q in self.encoding.quantiles],
                "nice": self.encoding.nice}
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, **_WORKER_ENV, **self.encoding.extra_env,
               "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
        try:
            # its own process group: a Ctrl-C or a launcher's SIGINT to the recorder's group is not for it (the
            # recorder finishes the episode through it). The same session: with the scheduler's autogroups (the
            # default on desktop Linux) a new session would compete with the recorder as an equal, whatever its
            # niceness, and capture could starve
            self._proc = subprocess.Popen([sys.executable, "-m", _WORKER, json.dumps(args)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                          process_group=0)
        except OSError as err:
            raise DatasetWriteError(f"cannot start the video encoder for {self.key}: {err}") from err
        threading.Thread(target=self._read_stdout, name=f"spool_{self.key}_out", daemon=True).start()
        threading.Thread(target=self._read_stderr, name=f"spool_{self.key}_err", daemon=True).start()

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "encoded":
                self.encoded = int(rest)
            elif word == "done":
                self.result = json.loads(rest)
            elif word == "error":
                self.error = rest
        self._done.set()

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            if line.strip() and not line.startswith("Svt["):
                self._stderr.append(line.rstrip())

    def _send(self, line: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as err:
            raise DatasetWriteError(f"the video encoder of {self.key} stopped: {self._failure()}") from err

    def _failure(self) -> str:
        text = self.error or " | ".join(self._stderr) or "no message"
        code = self._proc.poll() if self._proc is not None else None
        return f"{text} (exit code {code})" if code is not None else text

    def feed(self, image: npt.NDArray[np.uint8]) -> None:
        if self._proc is None:
            self._start(int(image.shape[0]), int(image.shape[1]))
        elif self._proc.poll() is not None:
            raise DatasetWriteError(f"the video encoder of {self.key} stopped: {self._failure()}")
        if self._chunk is None:
            self._chunk = open(self.folder / f"chunk_{self._chunk_index:06d}.raw", "wb")  # noqa: SIM115
        try:
            self._chunk.write(np.ascontiguousarray(image, dtype=np.uint8).data)
        except OSError as err:
            raise DatasetWriteError(f"spooling a {self.key} frame to {self.folder} failed: {err}") from err
        self.frames += 1
        self._chunk_frames += 1
        if self._chunk_frames >= self._per_chunk:
            self._close_chunk()

    def _close_chunk(self) -> None:
        if self._chunk is None:
            return
        try:
            self._chunk.close()
        except OSError as err:
            raise DatasetWriteError(f"spooling {self.key} frames to {self.folder} failed: {err}") from err
        self._chunk = None
        self._send(f"chunk {self._chunk_index} {self._chunk_frames}")
        self._chunk_index += 1
        self._chunk_frames = 0

    def backlog(self) -> int:
        return self.frames - self.encoded

    def finish(self) -> tuple[Path, dict[str, Any] | None]:
        if self._proc is None:
            raise DatasetWriteError(f"camera {self.key}: no frame was spooled")
        self._close_chunk()
        self._send(f"end {self.frames}")
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        code = self._proc.wait()
        self._done.wait()
        if code != 0 or (self.result is None and self.frames >= 2):
            raise DatasetWriteError(f"encoding {self.key} failed: {self._failure()}")
        stats = None if self.result is None else {k: np.asarray(v, np.float64) for k, v in self.result.items()}
        if stats is not None:
            stats["count"] = stats["count"].astype(np.int64)
        return self.video_path, stats

    def cancel(self) -> None:
        if self._chunk is not None:
            with contextlib.suppress(OSError):
                self._chunk.close()
            self._chunk = None
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._proc.stdin is not None
                self._proc.stdin.write("cancel\n")
                self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class SpoolVideoEncoder:
    """LeRobot's ``StreamingVideoEncoder`` interface over a disk spool and one encoder process per camera."""

    def __init__(self, spool_dir: Path, fps: int, encoding: VideoEncoding) -> None:
        self.spool_dir = Path(spool_dir)
        self.fps = fps
        self.encoding = encoding
        self._cameras: dict[str, _CameraSpool] = {}
        self._part: Path | None = None
        self._dropped_frames: dict[str, int] = {}  # LeRobot's interface: the spool never drops a frame
        self.last_finish_wait_s = 0.0

    @property
    def episode_active(self) -> bool:
        return self._part is not None

    def start_episode(self, video_keys: list[str], temp_dir: Path | None = None,
                      depth_video_keys: list[str] | None = None) -> None:
        """Open the spool of a new episode (``temp_dir``, LeRobot's choice of place, is not used)."""
        if depth_video_keys:
            raise DatasetWriteError(f"depth video features {depth_video_keys} are not supported by the spool encoder")
        if self._part is not None:
            self.cancel_episode()
        self._part = self.spool_dir / f"episode_{uuid.uuid4().hex[:12]}"
        self._cameras = {key: _CameraSpool(key, self._part / key.replace("/", "_"), self.fps, self.encoding)
                         for key in video_keys}

    def feed_frame(self, video_key: str, image: npt.NDArray[Any]) -> None:
        """Append one (H, W, 3) uint8 frame to the camera's spool (no wait on the encoder)."""
        if self._part is None:
            raise RuntimeError("No active episode. Call start_episode() first.")
        if image.ndim == 3 and image.shape[0] == 3 and image.shape[2] != 3:
            image = image.transpose(1, 2, 0)
        self._cameras[video_key].feed(image)

    def backlog(self) -> int:
        """Frames spooled but not encoded yet (the slowest camera)."""
        return max((c.backlog() for c in self._cameras.values()), default=0)

    def finish_episode(self) -> dict[str, tuple[Path, dict[str, Any] | None]]:
        """Wait for every camera's encoder; ``{video_key: (mp4 path, stats)}`` as LeRobot expects."""
        if self._part is None:
            raise RuntimeError("No active episode to finish.")
        t0 = time.monotonic()
        try:
            results = {key: cam.finish() for key, cam in self._cameras.items()}
        except BaseException:
            self.cancel_episode()
            raise
        self.last_finish_wait_s = time.monotonic() - t0
        self._cameras = {}
        self._part = None  # LeRobot moves each mp4 and deletes its folder; the empty part folder goes at start-up
        return results

    def cancel_episode(self) -> None:
        for cam in self._cameras.values():
            cam.cancel()
        if self._part is not None:
            shutil.rmtree(self._part, ignore_errors=True)
        self._cameras = {}
        self._part = None

    def close(self) -> None:
        self.cancel_episode()
