"""PNG plots of a RunTrace: latency histograms, and predicted chunks against the executed joint paths."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from wallx_ros.analysis.errors import RunTraceError
from wallx_ros.analysis.run_trace import RunTrace

__all__ = ["plot_latency_histograms", "plot_trajectories"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_latency_histograms(trace: RunTrace, path: str | os.PathLike[str]) -> Path:
    """One histogram per latency series, titled with n / p50 / p90 / max."""
    series = {k: v for k, v in sorted(trace.latencies_ms.items()) if v}
    if not series:
        raise RunTraceError(f"{trace.source}: no latency samples to plot")
    plt = _pyplot()
    cols = min(3, len(series))
    rows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, (name, values) in zip(axes.flat, series.items(), strict=False):
        arr = np.asarray(values)
        ax.hist(arr, bins=min(40, max(5, len(arr) // 3)), color="tab:blue", alpha=0.8)
        ax.set_title(f"{name}\nn={len(arr)} p50={np.percentile(arr, 50):.1f} p90={np.percentile(arr, 90):.1f} "
                     f"max={arr.max():.1f}", fontsize=9)
        ax.set_xlabel("ms")
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    fig.suptitle(f"latencies: {Path(trace.source).name}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_trajectories(trace: RunTrace, path: str | os.PathLike[str], max_chunks: int = 200) -> Path:
    """Per joint: executed position (black), every accepted chunk (coloured, points due at stamp +
    time_from_start), joint limits (dashed red) when known. Time axis in seconds from the first sample."""
    if len(trace.state_time_ns) == 0:
        raise RunTraceError(f"{trace.source}: no executed joint states to plot")
    plt = _pyplot()
    n = len(trace.joint_names)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 1.9 * rows + 0.8), squeeze=False, sharex=True)
    t0 = int(trace.state_time_ns[0])
    ts = (trace.state_time_ns - t0) * 1e-9
    chunks = [t for t in trace.trajectories if t.accepted and len(t.positions)][:max_chunks]
    cmap = plt.get_cmap("viridis")
    err = trace.tracking_error()
    for j, ax in enumerate(axes.flat[:n]):
        for k, chunk in enumerate(chunks):
            ax.plot((chunk.point_times_ns - t0) * 1e-9, chunk.positions[:, j], lw=0.9, alpha=0.7,
                    color=cmap(k / max(1, len(chunks) - 1)))
        ax.plot(ts, trace.state_positions[:, j], color="black", lw=1.2)
        if trace.lower_limits is not None and trace.upper_limits is not None:
            for lim in (trace.lower_limits[j], trace.upper_limits[j]):
                ax.axhline(lim, color="red", ls="--", lw=0.7)
        title = trace.joint_names[j] + (f"  (tracking RMS {err[j]:.3f})" if np.isfinite(err[j]) else "")
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time [s]")
    fig.suptitle(f"predicted chunks (colour: oldest -> newest, {len(chunks)}) vs executed (black)", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
