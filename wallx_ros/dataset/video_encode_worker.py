"""One camera's video encoder, as a process: spooled raw frames in, an mp4 and LeRobot-style image stats out.

Started by :mod:`wallx_ros.dataset.video_spool` with one JSON argument (paths, size, fps, codec settings,
niceness). It reads commands on stdin, one per line:

* ``chunk <index> <frames>``: ``chunk_<index>.raw`` in the spool folder is complete with that many frames
  (raw ``height x width x 3`` uint8 RGB, back to back); it is encoded, then deleted;
* ``end <frames>``: no more chunks; flush the encoder, close the mp4, print the stats, exit 0;
* ``cancel`` (or end of input without ``end``: the recorder died): stop, delete what was written, exit 3.

It prints ``encoded <frames>`` after every chunk and, at the end, ``done <json stats>`` on stdout. Stats
(min, max, mean, std, count and the quantiles LeRobot names, per RGB channel, over frames subsampled as
LeRobot subsamples them)
are exact: for uint8 pixels a 256-bin histogram per channel gives every quantile. Imports only numpy and
PyAV, so it starts in a fraction of a second. Runs at the niceness it is given: capture keeps the CPU.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ImageStats", "main"]

_STATS_TARGET = 150  # LeRobot subsamples images to about this many pixels on the long side for stats
_STATS_THRESHOLD = 300


class ImageStats:
    """Per-channel statistics of uint8 RGB frames, from histograms (exact quantiles)."""

    def __init__(self, quantiles: list[tuple[str, float]]) -> None:
        self.quantiles = quantiles  # (stats key, quantile), e.g. ("q01", 0.01)
        self.hist = np.zeros((3, 256), np.int64)
        self.frames = 0

    def update(self, frame: npt.NDArray[np.uint8]) -> None:
        h, w = frame.shape[:2]
        step = int(max(h, w) / _STATS_TARGET) if max(h, w) >= _STATS_THRESHOLD else 1
        sub = frame[::step, ::step].reshape(-1, 3)
        for c in range(3):
            self.hist[c] += np.bincount(sub[:, c], minlength=256)
        self.frames += 1

    def result(self) -> dict[str, list[float]] | None:
        """LeRobot's stats keys (``q01`` ... for the quantiles); None below 2 frames, as LeRobot's encoder."""
        if self.frames < 2:
            return None
        values = np.arange(256, dtype=np.float64)
        count = self.hist.sum(axis=1)
        mean = (self.hist * values).sum(axis=1) / count
        var = (self.hist * values**2).sum(axis=1) / count - mean**2
        nonzero = self.hist > 0
        out: dict[str, list[float]] = {
            "min": [float(np.argmax(nonzero[c])) for c in range(3)],
            "max": [float(255 - np.argmax(nonzero[c][::-1])) for c in range(3)],
            "mean": mean.tolist(),
            "std": np.sqrt(np.maximum(var, 0)).tolist(),
            "count": [float(count[0])],
        }
        cum = np.cumsum(self.hist, axis=1)
        for key, q in self.quantiles:
            out[key] = [float(np.searchsorted(cum[c], q * count[c])) for c in range(3)]
        return out


def _commands(stream: Any, out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line.strip())
    out.put(None)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = json.loads((argv or sys.argv[1:])[0])
    if args.get("nice"):
        os.nice(int(args["nice"]))
    import av

    spool = Path(args["dir"])
    video_path = Path(args["video"])
    height, width, fps = int(args["height"]), int(args["width"]), int(args["fps"])
    frame_bytes = height * width * 3
    stats = ImageStats([(str(k), float(q)) for k, q in args["quantiles"]])
    commands: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_commands, args=(sys.stdin, commands), daemon=True).start()
    encoded = 0
    try:
        container = av.open(str(video_path), "w")
        stream = container.add_stream(args["vcodec"], rate=fps, options=dict(args["options"]))
        stream.pix_fmt = args["pix_fmt"]
        stream.width, stream.height = width, height
        stream.time_base = Fraction(1, fps)
        while True:
            command = commands.get()
            if command is None or command == "cancel":
                container.close()
                video_path.unlink(missing_ok=True)
                for chunk in spool.glob("chunk_*.raw"):
                    chunk.unlink(missing_ok=True)
                return 3
            word, *rest = command.split()
            if word == "chunk":
                path = spool / f"chunk_{int(rest[0]):06d}.raw"
                frames = np.fromfile(path, np.uint8, count=int(rest[1]) * frame_bytes)
                for image in frames.reshape(-1, height, width, 3):
                    video_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    video_frame.pts = encoded
                    video_frame.time_base = Fraction(1, fps)
                    for packet in stream.encode(video_frame):
                        container.mux(packet)
                    stats.update(image)
                    encoded += 1
                path.unlink()
                _say(f"encoded {encoded}")
            elif word == "end":
                if int(rest[0]) != encoded:
                    raise RuntimeError(f"{int(rest[0])} frames were spooled but {encoded} encoded")
                for packet in stream.encode():
                    container.mux(packet)
                container.close()
                _say("done " + json.dumps(stats.result()))
                return 0
            else:
                raise RuntimeError(f"unknown command {command!r}")
    except Exception as err:  # reported to the parent on stdout; it raises a DatasetWriteError
        _say(f"error {type(err).__name__}: {err}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
