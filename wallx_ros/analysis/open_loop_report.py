"""Open-loop evaluation: predicted action chunks against a dataset's recorded actions.

For frames sampled from the dataset, the policy backend (``wallx_ros.policy.load_backend``, the same
code the policy node runs) predicts a chunk from that frame's images, state and task; row ``t`` of the
chunk is compared with the dataset's action ``t`` frames later in the same episode (LeRobot convention:
action ``t`` is the command of step ``t``). Joints are matched by name. Written: ``open_loop_report.json``
(per-joint MAE/RMSE, error by horizon step), ``open_loop_report.md`` and ``open_loop_report.png``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.core.types import Observation
from wallx_ros.dataset.dataset_reader import DatasetReader
from wallx_ros.dataset.errors import DatasetError
from wallx_ros.policy.backend import PolicyBackend

__all__ = ["OpenLoopChunk", "OpenLoopReport", "evaluate_open_loop", "write_report"]


@dataclass(frozen=True)
class OpenLoopChunk:
    """One prediction: where it started, the predicted rows and the recorded ones (same columns)."""

    episode_index: int
    frame_index: int
    predicted: npt.NDArray[np.float64]
    recorded: npt.NDArray[np.float64]


@dataclass
class OpenLoopReport:
    dataset: str
    checkpoint: str
    joints: list[str]
    dataset_fps: float
    policy_fps: float
    chunks: int
    compared_steps: int
    mae_per_joint: dict[str, float]
    rmse_per_joint: dict[str, float]
    max_abs_per_joint: dict[str, float]
    mae_by_horizon: list[float]
    mae_overall: float
    notes: list[str] = field(default_factory=list)
    predictions: list[OpenLoopChunk] = field(default_factory=list, repr=False)


def evaluate_open_loop(reader: DatasetReader, backend: PolicyBackend, *, checkpoint: str = "", stride: int = 0,
                       max_chunks: int = 16) -> OpenLoopReport:
    """Predict at up to ``max_chunks`` frames (every ``stride`` frames; 0 = one chunk length) and compare."""
    if max_chunks <= 0:
        raise DatasetError(f"max_chunks must be > 0, got {max_chunks}")
    missing_cams = [c for c in backend.cameras if c not in reader.cameras]
    if missing_cams:
        raise DatasetError(f"the policy needs cameras {missing_cams} that dataset {reader.root} lacks "
                           f"(it has {list(reader.cameras)})")
    state_index = _columns(reader.state_names, backend.state_names, "state", reader.root)
    action_index = _columns(reader.action_names, backend.action_names, "action", reader.root)
    actions, episodes, frames = reader.actions_and_index()
    notes: list[str] = []
    if not math.isclose(reader.fps, backend.fps, rel_tol=1e-6):
        notes.append(f"dataset fps {reader.fps:g} != policy fps {backend.fps:g}: chunk rows and dataset frames "
                     "are compared step by step, not by time")
    starts = _sample_starts(frames, episodes, stride, max_chunks)
    chunks: list[OpenLoopChunk] = []
    for i in starts:
        frame = reader.frame(int(i))
        obs = Observation(images={c: frame.images[c] for c in backend.cameras},
                          state=frame.state[state_index].astype(np.float32), instruction=frame.task, stamp_ns=0)
        pred = backend.predict_chunk(obs).actions
        same = np.flatnonzero(episodes[i:i + pred.shape[0]] == episodes[i])
        n = int(same.size)
        recorded = actions[i:i + n][:, action_index].astype(np.float64)
        chunks.append(OpenLoopChunk(int(episodes[i]), int(frames[i]), pred[:n].astype(np.float64), recorded))
    if not chunks:
        raise DatasetError(f"dataset {reader.root} has no frames to evaluate")
    horizon = max(c.predicted.shape[0] for c in chunks)
    errs = [np.abs(c.predicted - c.recorded) for c in chunks]
    all_err = np.concatenate(errs, axis=0)
    by_h = [float(np.mean(np.concatenate([e[h] for e in errs if e.shape[0] > h]))) for h in range(horizon)]
    joints = list(backend.action_names)
    return OpenLoopReport(
        dataset=str(reader.root), checkpoint=checkpoint, joints=joints, dataset_fps=reader.fps,
        policy_fps=backend.fps, chunks=len(chunks), compared_steps=int(all_err.shape[0]),
        mae_per_joint={j: float(v) for j, v in zip(joints, all_err.mean(axis=0), strict=True)},
        rmse_per_joint={j: float(v) for j, v in zip(joints, np.sqrt((all_err ** 2).mean(axis=0)), strict=True)},
        max_abs_per_joint={j: float(v) for j, v in zip(joints, all_err.max(axis=0), strict=True)},
        mae_by_horizon=by_h, mae_overall=float(all_err.mean()), notes=notes, predictions=chunks)


def _columns(have: tuple[str, ...], want: tuple[str, ...], what: str, root: Path) -> npt.NDArray[np.intp]:
    where = {n: i for i, n in enumerate(have)}
    missing = [n for n in want if n not in where]
    if missing:
        raise DatasetError(f"the policy's {what} joints {missing} are not in dataset {root}'s {what} names "
                           f"{list(have)}; joints are matched by name")
    return np.array([where[n] for n in want], dtype=np.intp)


def _sample_starts(frames: npt.NDArray[np.int64], episodes: npt.NDArray[np.int64], stride: int,
                   max_chunks: int) -> npt.NDArray[np.int64]:
    step = stride if stride > 0 else 32
    candidates = np.flatnonzero(frames % step == 0)
    if candidates.size > max_chunks:
        pick = np.linspace(0, candidates.size - 1, max_chunks).round().astype(np.int64)
        candidates = candidates[np.unique(pick)]
    return candidates.astype(np.int64)


def write_report(report: OpenLoopReport, out_dir: str | Path) -> dict[str, Path]:
    """JSON + markdown + PNG plot into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {k: v for k, v in asdict(report).items() if k != "predictions"}
    doc["chunk_starts"] = [{"episode": c.episode_index, "frame": c.frame_index} for c in report.predictions]
    paths = {"json": out / "open_loop_report.json", "markdown": out / "open_loop_report.md",
             "png": out / "open_loop_report.png"}
    paths["json"].write_text(json.dumps(doc, indent=2) + "\n")
    lines = [f"# Open-loop evaluation: {report.checkpoint or 'policy'} on {report.dataset}", "",
             f"{report.chunks} chunks, {report.compared_steps} compared steps, overall MAE {report.mae_overall:.4g}",
             "", "| joint | MAE | RMSE | max abs |", "|---|---|---|---|"]
    lines += [f"| {j} | {report.mae_per_joint[j]:.4g} | {report.rmse_per_joint[j]:.4g} | "
              f"{report.max_abs_per_joint[j]:.4g} |" for j in report.joints]
    lines += ["", "MAE by horizon step: " + ", ".join(f"{v:.3g}" for v in report.mae_by_horizon)]
    lines += ["", *[f"Note: {n}" for n in report.notes]]
    paths["markdown"].write_text("\n".join(lines) + "\n")
    _plot(report, paths["png"])
    return paths


def _plot(report: OpenLoopReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = report.joints[: min(4, len(report.joints))]
    fig = plt.figure(figsize=(12, 3.2 * (1 + math.ceil(len(shown) / 2))), constrained_layout=True)
    grid = fig.add_gridspec(1 + math.ceil(len(shown) / 2), 2)
    ax = fig.add_subplot(grid[0, 0])
    ax.bar(range(len(report.joints)), [report.mae_per_joint[j] for j in report.joints], color="tab:blue")
    ax.set_xticks(range(len(report.joints)), report.joints, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("MAE")
    ax.set_title("per-joint mean absolute error")
    ax = fig.add_subplot(grid[0, 1])
    ax.plot(np.arange(1, len(report.mae_by_horizon) + 1), report.mae_by_horizon, marker=".")
    ax.set_xlabel("chunk step")
    ax.set_ylabel("MAE (all joints)")
    ax.set_title("error by horizon")
    first_ep = report.predictions[0].episode_index
    chunks = [c for c in report.predictions if c.episode_index == first_ep]
    for k, joint in enumerate(shown):
        ax = fig.add_subplot(grid[1 + k // 2, k % 2])
        col = report.joints.index(joint)
        for n, c in enumerate(chunks):
            t = c.frame_index + np.arange(c.recorded.shape[0])
            ax.plot(t, c.recorded[:, col], color="black", lw=1.2, label="dataset action" if n == 0 else None)
            ax.plot(t, c.predicted[:, col], color="tab:orange", lw=1, alpha=0.8, label="predicted" if n == 0 else None)
        ax.set_title(f"{joint} (episode {first_ep})", fontsize=9)
        ax.set_xlabel("frame")
        ax.legend(fontsize=7)
    fig.suptitle(f"open loop: {Path(report.checkpoint).name or 'policy'} vs {Path(report.dataset).name}")
    fig.savefig(path, dpi=90)
    plt.close(fig)
