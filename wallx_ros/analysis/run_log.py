"""The simulator's run log: one JSON object per line, written while it runs, read back into a RunTrace.

Events (``"event"`` field), times in ns on the sim clock, ``wall`` in seconds on the monotonic clock:

* ``start``: ``joint_names``, ``lower``, ``upper`` (joint limits), ``control_rate_hz``, ``config``;
* ``step``: ``t``, ``wall``, ``q`` (measured positions after the step), ``cmd`` (command), ``phase``,
  ``step_ms`` (wall time of the physics step);
* ``trajectory``: ``t`` (arrival), ``wall``, ``stamp``, ``accepted``, ``problems``, and for accepted
  ones ``tfs`` (time_from_start per point) and ``positions`` (points x joints, log joint order);
* ``frames``: ``t``, ``render_ms`` (wall time per camera frame).

A log that ends mid-line (the process was killed) is read up to its last complete line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from wallx_ros.analysis.errors import RunTraceError
from wallx_ros.analysis.run_trace import RunTrace, TrajectoryRecord

__all__ = ["RunLogWriter", "read_run_log"]


def _floats(values: Sequence[float] | npt.NDArray[np.float64]) -> list[float]:
    return [round(float(v), 6) for v in values]


class RunLogWriter:
    """Append run events to a JSONL file (buffered; ``flush()`` periodically, ``close()`` at the end)."""

    def __init__(self, path: str | os.PathLike[str], joint_names: Sequence[str], lower: Sequence[float],
                 upper: Sequence[float], control_rate_hz: float, config: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "w", buffering=1 << 16)  # noqa: SIM115 - closed in close()
        self._write({"event": "start", "joint_names": list(joint_names), "lower": _floats(lower),
                     "upper": _floats(upper), "control_rate_hz": control_rate_hz, "config": config or {}})

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def step(self, t_ns: int, wall_s: float, positions: npt.NDArray[np.float64], command: npt.NDArray[np.float64],
             phase: str, step_ms: float) -> None:
        self._write({"event": "step", "t": t_ns, "wall": round(wall_s, 6), "q": _floats(positions),
                     "cmd": _floats(command), "phase": phase, "step_ms": round(step_ms, 3)})

    def trajectory(self, t_ns: int, wall_s: float, stamp_ns: int, problems: Sequence[str],
                   times_ns: Sequence[int] = (), positions: npt.NDArray[np.float64] | None = None) -> None:
        record: dict[str, Any] = {"event": "trajectory", "t": t_ns, "wall": round(wall_s, 6), "stamp": stamp_ns,
                                  "accepted": not problems, "problems": list(problems)}
        if not problems and positions is not None:
            record["tfs"] = [int(t) for t in times_ns]
            record["positions"] = [_floats(row) for row in positions]
        self._write(record)

    def frames(self, t_ns: int, render_ms: float) -> None:
        self._write({"event": "frames", "t": t_ns, "render_ms": round(render_ms, 3)})

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLogWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _wall_at(sim_ns: int, times: npt.NDArray[np.int64], walls: npt.NDArray[np.float64]) -> float:
    """Wall time (s) at which the simulation reached ``sim_ns`` (interpolated between steps)."""
    if len(times) == 0 or sim_ns < times[0] or sim_ns > times[-1]:
        return math.nan
    return float(np.interp(sim_ns, times, walls))


def read_run_log(path: str | os.PathLike[str]) -> RunTrace:
    """Read a run log into a RunTrace, with latency series:

    ``trajectory age at arrival [sim ms]`` (arrival minus header.stamp), ``observation to command [wall ms]``
    (wall time from the sim reaching the stamp to the trajectory's arrival), ``chunk inter-arrival [sim ms]``,
    ``physics step [wall ms]`` and ``render per frame [wall ms]``.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise RunTraceError(f"cannot read run log {path}: {err}") from err
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):  # a killed writer leaves a partial last line
                break
            raise RunTraceError(f"{path}:{number} is not JSON ({err}): is this a wallx_ros sim run log?") from err
    if not records or records[0].get("event") != "start":
        raise RunTraceError(f"{path} does not start with a 'start' event: not a wallx_ros sim run log")
    start = records[0]
    names = tuple(str(n) for n in start["joint_names"])
    steps = [r for r in records if r.get("event") == "step"]
    if not steps:
        raise RunTraceError(f"{path} holds no simulation steps: did the simulator run?")
    times = np.array([int(r["t"]) for r in steps], dtype=np.int64)
    walls = np.array([float(r["wall"]) for r in steps], dtype=np.float64)
    trace = RunTrace(
        joint_names=names,
        state_time_ns=times,
        state_positions=np.array([r["q"] for r in steps], dtype=np.float64),
        lower_limits=np.array(start["lower"], dtype=np.float64),
        upper_limits=np.array(start["upper"], dtype=np.float64),
        source=str(path),
    )
    for r in steps:
        trace.add_latency("physics step [wall ms]", float(r["step_ms"]))
    for r in records:
        if r.get("event") == "frames":
            trace.add_latency("render per frame [wall ms]", float(r["render_ms"]))
        elif r.get("event") == "trajectory":
            accepted = bool(r["accepted"])
            positions = np.array(r.get("positions", np.zeros((0, len(names)))), dtype=np.float64)
            trace.trajectories.append(TrajectoryRecord(
                arrival_ns=int(r["t"]), stamp_ns=int(r["stamp"]),
                times_ns=np.array(r.get("tfs", []), dtype=np.int64),
                positions=positions.reshape(-1, len(names)), accepted=accepted))
            if accepted and int(r["stamp"]) != 0:
                trace.add_latency("trajectory age at arrival [sim ms]", (int(r["t"]) - int(r["stamp"])) * 1e-6)
                trace.add_latency("observation to command [wall ms]",
                                  (float(r["wall"]) - _wall_at(int(r["stamp"]), times, walls)) * 1e3)
    for value in trace.inter_arrival_ms():
        trace.add_latency("chunk inter-arrival [sim ms]", value)
    return trace
