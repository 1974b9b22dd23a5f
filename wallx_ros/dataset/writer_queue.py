"""The ordered queue between capture and the dataset writer thread: frames wait in memory, then on disk.

A live recorder must never drop or reorder a frame because the writer is busy (saving an episode waits for
the video encoders, LeRobot's bookkeeping takes a while): frames past ``ram_frames`` are written to spill
files by ``encode`` (``dataset.frame_spill``: arrays behind a JSON header, no pickle) and read back in order,
so a slow writer costs disk space, not frames. Spill files are segments of ``segment_bytes``; a segment is
deleted once every frame in it was read, so the disk holds the backlog only. Commands (start, save, discard,
close) travel in the same order as the frames around them. ``put_frame`` returns False only when the spill
cannot be written (disk full): the caller must then end the episode, never skip the frame silently.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from wallx_ros.dataset.frame_spill import decode_frame, encode_frame

__all__ = ["WriterQueue"]


class WriterQueue:
    """Thread-safe FIFO of ``(command, argument, future)``; frames beyond ``ram_frames`` spill to ``spill_dir``."""

    def __init__(self, spill_dir: Path, ram_frames: int, segment_bytes: int = 512 << 20,
                 encode: Callable[[Any], bytes] = encode_frame, decode: Callable[[bytes], Any] = decode_frame) -> None:
        self.spill_dir = Path(spill_dir)
        self._encode, self._decode = encode, decode
        self.ram_frames = ram_frames
        self.segment_bytes = segment_bytes
        self._items: deque[tuple[str, Any, Future[Any] | None]] = deque()
        self._cond = threading.Condition()
        self._in_ram = 0
        self._on_disk = 0
        self._segments: dict[int, _Segment] = {}
        self._writing: _Segment | None = None
        self._next_id = 0

    @property
    def frames(self) -> int:
        """Frames waiting (in memory and on disk)."""
        with self._cond:
            return self._in_ram + self._on_disk

    @property
    def frames_on_disk(self) -> int:
        with self._cond:
            return self._on_disk

    def put_command(self, command: str, arg: Any = None, future: Future[Any] | None = None) -> None:
        with self._cond:
            self._items.append((command, arg, future))
            self._cond.notify()

    def put_frame(self, payload: Any) -> bool:
        """Queue one frame; False if it had to go to disk and could not (the frame is not queued)."""
        with self._cond:
            if self._in_ram < self.ram_frames:
                self._items.append(("frame", payload, None))
                self._in_ram += 1
            else:
                try:
                    ref = self._spill(self._encode(payload))
                except OSError:
                    return False
                self._items.append(("spilled", ref, None))
                self._on_disk += 1
            self._cond.notify()
            return True

    def get(self) -> tuple[str, Any, Future[Any] | None]:
        """The next item (blocks); spilled frames come back as ``("frame", payload, None)``."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            command, arg, future = self._items.popleft()
            if command == "frame":
                self._in_ram -= 1
            elif command == "spilled":
                self._on_disk -= 1
                segment_id, offset, length = arg
                segment = self._segments[segment_id]
                data = os.pread(segment.fd, length, offset)
                segment.unread -= 1
                if segment.unread == 0 and segment is not self._writing:  # read to the end: give the space back
                    self._drop(segment_id)
                return "frame", self._decode(data), None
            return command, arg, future

    def _spill(self, data: bytes) -> tuple[int, int, int]:
        segment = self._writing
        if segment is None or segment.end >= self.segment_bytes:
            if segment is not None and segment.unread == 0:
                self._drop(segment.id)
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            path = self.spill_dir / f"frames_{uuid.uuid4().hex[:12]}.spill"
            segment = _Segment(self._next_id, path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600))
            self._segments[segment.id] = segment
            self._writing = segment
            self._next_id += 1
        written = os.pwrite(segment.fd, data, segment.end)
        if written != len(data):
            raise OSError(f"short write to {segment.path} (disk full?)")
        offset = segment.end
        segment.end += len(data)
        segment.unread += 1
        return segment.id, offset, len(data)

    def _drop(self, segment_id: int) -> None:
        segment = self._segments.pop(segment_id)
        if segment is self._writing:
            self._writing = None
        os.close(segment.fd)
        with contextlib.suppress(OSError):
            segment.path.unlink()

    def close(self) -> None:
        """Delete the spill file (frames still queued are lost: call when the writer has drained the queue)."""
        with self._cond:
            for segment_id in list(self._segments):
                self._drop(segment_id)


class _Segment:
    """One spill file: its descriptor, write offset and how many frames in it are still to be read."""

    def __init__(self, segment_id: int, path: Path, fd: int) -> None:
        self.id = segment_id
        self.path = path
        self.fd = fd
        self.end = 0
        self.unread = 0
