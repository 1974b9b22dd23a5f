"""Benchmark of the embedded simulation and of the closed loop (sim + policy) on this machine.

    python bench/sim_loop.py                  # sim only: physics step, render per frame, max real-time factor
    python bench/sim_loop.py --closed-loop 120  # + `scripts/demo.sh` for 120 wall seconds (tiny checkpoint, CPU)

Writes bench/results/sim_loop_<host>_<date>.json and .md naming the machine (CPU model, cores, load).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

from wallx_ros.analysis.run_log import read_run_log  # noqa: E402
from wallx_ros.sim.config import SimConfig  # noqa: E402
from wallx_ros.sim.simulation import Simulation  # noqa: E402


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "load_1_5_15": os.getloadavg(),
            "python": platform.python_version(), "mujoco_gl": os.environ.get("MUJOCO_GL")}


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"n": len(arr), "p50": round(float(np.percentile(arr, 50)), 2),
            "p90": round(float(np.percentile(arr, 90)), 2), "mean": round(float(arr.mean()), 2)}


def sim_only(seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sim = Simulation(SimConfig(camera_rate_hz=0.0))
    steps = round(seconds * 50)
    walls = []
    for _ in range(steps):
        start = time.perf_counter()
        sim.step()
        walls.append((time.perf_counter() - start) * 1e3)
    sim.close()
    out["control_step_ms (20 ms of sim = 10 physics steps)"] = pct(walls)
    out["max_real_time_factor_no_render"] = round(20.0 / float(np.mean(walls)), 1)
    for (w, h), shadows in (((320, 240), False), ((640, 480), False), ((320, 240), True)):
        sim = Simulation(SimConfig(camera_rate_hz=10.0, image_width=w, image_height=h, render_shadows=shadows))
        sim.render()  # warm-up (GL context)
        frames = []
        for _ in range(8):
            sim.step()
            start = time.perf_counter()
            sim.render()
            frames.append((time.perf_counter() - start) * 1e3 / len(sim.config.cameras))
        sim.close()
        out[f"render_ms_per_frame {w}x{h}{' shadows' if shadows else ''}"] = pct(frames)
    step_ms = float(np.mean(walls))
    frame_ms = out["render_ms_per_frame 320x240"]["mean"]
    # one sim second at the defaults: 50 control steps + 10 Hz x 3 cameras
    out["max_real_time_factor_defaults (3 cams 320x240 @ 10 Hz)"] = round(1000.0 / (50 * step_ms + 30 * frame_ms), 2)
    return out


def closed_loop(seconds: float, rtf: float) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix="wallx_bench_"))
    env = dict(os.environ, ROS_DOMAIN_ID=str(100 + os.getpid() % 100), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    cmd = ["bash", str(ROOT / "scripts" / "demo.sh"), "--no-setup", "--real-time-factor", str(rtf), "--out",
           str(out_dir)]
    with open(out_dir / "console.log", "w") as console:
        demo = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        time.sleep(seconds)
        # SIGTERM: demo.sh traps it like Ctrl-C; a SIGINT would be ignored when this bench runs in the background
        demo.send_signal(signal.SIGTERM)
        demo.wait(300)
    trace = read_run_log(out_dir / "run.jsonl")
    accepted = [t for t in trace.trajectories if t.accepted]
    result: dict[str, Any] = {"wall_s": seconds, "real_time_factor": rtf, "chunks_accepted": len(accepted),
                              "chunks_rejected": len(trace.trajectories) - len(accepted), "run_dir": str(out_dir)}
    if accepted:
        t0, t1 = min(t.arrival_ns for t in accepted), max(t.arrival_ns for t in accepted)
        phases = [json.loads(line)["phase"] for line in (out_dir / "run.jsonl").read_text().splitlines()
                  if '"event":"step"' in line and t0 < json.loads(line)["t"] <= t1]
        result["missed_control_periods_fraction"] = round(phases.count("holding") / max(1, len(phases)), 3)
        result["chunks_per_sim_s"] = round(len(accepted) / max(1e-9, (t1 - t0) * 1e-9), 2)
    for name, values in trace.latencies_ms.items():
        result[name] = pct(values)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim-seconds", type=float, default=4.0, help="sim seconds for the physics timing")
    parser.add_argument("--closed-loop", type=float, default=0.0, help="wall seconds of demo.sh (0 = skip)")
    parser.add_argument("--rtf", type=float, default=0.1, help="real-time factor of the closed loop")
    args = parser.parse_args()
    report: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine()}
    report["sim"] = sim_only(args.sim_seconds)
    if args.closed_loop > 0:
        report["closed_loop"] = closed_loop(args.closed_loop, args.rtf)
    report["machine"]["load_1_5_15_after"] = os.getloadavg()
    stem = f"sim_loop_{report['machine']['host']}_{dt.datetime.now():%Y-%m-%d_%H%M}"
    if args.closed_loop > 0:
        stem += f"_rtf{args.rtf:g}"
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# sim loop benchmark {report['date']}", "", f"machine: {report['machine']}", ""]
    for section in ("sim", "closed_loop"):
        if section in report:
            lines += [f"## {section}", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in report[section].items()]
            lines.append("")
    (results / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
