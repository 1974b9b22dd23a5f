"""Smoothness of chunk switches: none / crossfade / c1 blend / real-time chunking, same seeds, same sim loop.

    python bench/chunk_smoothness.py [--switches 100] [--modes none,crossfade,c1,rtc] [--engine fast_flow]

One in-process closed loop per mode, on simulated time: the embedded ALOHA simulation (``wallx_ros.sim``: MuJoCo
physics, the JTC-like trajectory executor at ``--control-rate``, the cameras rendered at each observation), the
tiny random-weight WallX checkpoint (CPU), and the policy node's own ROS-free pipeline
(``core.policy_control.PolicyControl``: action mapping, chunk merge, safety limits from the sim's joint limits,
JTC rules; RTC prefix and delay estimate). The model's latency is simulated: each chunk takes over a seeded
random delay after its observation (``--latency-ms``, plus rare spikes), while the sim keeps executing the
running plan, as an asynchronous deployment does. Every mode sees the same latency sequence and the same flow
noise sequence (``torch.manual_seed``). Per switch: position jump, velocity jump, peak acceleration of what the
controller samples (``core.switch_smoothness``), for RTC the prefix error (chunk's frozen rows vs the plan
that executed), for c1 the blend width (how long the running plan keeps a share of the command: what the
continuity costs in reactivity; RTC gets it from the model instead).
Results: bench/results/chunk_smoothness_<host>_<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
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

from wallx_ros.core.action_mapping import ActionMapping  # noqa: E402
from wallx_ros.core.chunk_execution import ExecutionConfig  # noqa: E402
from wallx_ros.core.policy_control import ControlConfig, PolicyControl  # noqa: E402
from wallx_ros.core.realtime_chunking import RtcConfig  # noqa: E402
from wallx_ros.core.safety import JointLimits, SafetyFilter  # noqa: E402
from wallx_ros.core.types import Observation  # noqa: E402
from wallx_ros.sim.config import SimConfig  # noqa: E402
from wallx_ros.sim.simulation import Simulation  # noqa: E402
from wallx_ros.sim.trajectory_executor import ReceivedTrajectory  # noqa: E402

MODES = ("none", "crossfade", "c1", "rtc")


def machine() -> dict[str, Any]:
    import torch

    from wallx_ros.lerobot import versions

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "load_1_5_15": os.getloadavg(),
            "python": platform.python_version(), "torch": torch.__version__,
            "lerobot": ".".join(map(str, versions.lerobot_version())),
            "transformers": ".".join(map(str, versions.transformers_version())),
            "date": dt.datetime.now().isoformat(timespec="seconds")}


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values, dtype=float)
    return {"n": len(arr), "p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max())}


def run_mode(mode: str, args: argparse.Namespace, checkpoint: Path) -> dict[str, Any]:
    import torch

    from wallx_ros.policy import BackendConfig, load_backend

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    backend = load_backend(BackendConfig(checkpoint_dir=checkpoint, allow_random_weights=True, engine=args.engine,
                                         rtc=mode == "rtc", rtc_max_guidance=args.max_guidance))
    shape = next(iter(backend.image_shapes.values()))
    sim = Simulation(SimConfig(control_rate_hz=args.control_rate, camera_rate_hz=args.control_rate,
                               image_width=int(shape[2]), image_height=int(shape[1]), seed=args.seed))
    names = sim.joint_names
    assert tuple(backend.action_names) == names, (backend.action_names, names)
    mapping = ActionMapping.build(names, names)
    limits = sim.limits
    safety = SafetyFilter(JointLimits(names, tuple(limits.lower), tuple(limits.upper), tuple(limits.max_velocity)))
    execution = ExecutionConfig(execution_horizon=args.horizon, blend="none" if mode == "rtc" else mode,
                                blend_steps=args.blend_steps)
    rtc = RtcConfig(enabled=mode == "rtc", max_guidance=args.max_guidance, schedule=args.schedule,
                    delay_percentile=args.delay_percentile)
    period = 1.0 / args.control_rate
    control = PolicyControl(ControlConfig(execution, rtc=rtc, control_period_s=period, hold_time_s=2 * period),
                            mapping, safety, 1.0 / backend.fps)
    control.executor.max_acceleration = np.full(len(names), args.max_acceleration)
    control.activate(0)
    low, high = args.latency_ms
    rows: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    rejected = 0
    wall = time.monotonic()
    while len(rows) < args.switches:
        now = sim.time_ns
        if pending is not None and now >= pending["due"]:
            outcome = control.on_chunk(pending["chunk"].actions, pending["state"], pending["stamp"], now,
                                       rtc=pending["rtc"])
            if outcome.command is None:
                rejected += 1
            else:
                problems = sim.offer(ReceivedTrajectory(outcome.command.names, tuple(outcome.command.points()),
                                                       outcome.command.stamp_ns))
                assert not problems, problems
                if outcome.switch is not None:
                    rows.append({"blend_ms": control.executor.last_blend_ns / 1e6 if mode == "c1" else None,
                                 "position_jump": outcome.switch.position_jump,
                                 "velocity_jump": outcome.switch.velocity_jump,
                                 "peak_acceleration": outcome.switch.peak_acceleration,
                                 "prefix_error": outcome.prefix_error, "frozen_steps": outcome.frozen_steps,
                                 "delay_steps": outcome.delay_steps,
                                 "delay_ms": (now - pending["stamp"]) / 1e6})
            pending = None
        estimate = control.delay.estimate_s()
        if pending is None and control.replan_due(now, estimate if estimate is not None else (low + high) / 2e3):
            state = sim.scene.positions()
            control.observe(state)
            obs = Observation(images=sim.render(), state=mapping.state_to_model(state), instruction="insert the peg",
                              stamp_ns=now)
            request = control.rtc_request(now, state, backend.chunk_size)
            chunk = backend.predict_chunk(obs, request.prefix if request is not None else None)
            latency_ms = rng.uniform(low, high) if rng.random() >= args.spike_fraction else high * 1.5
            pending = {"due": now + round(latency_ms * 1e6), "chunk": chunk, "state": state, "stamp": now,
                       "rtc": request}
        sim.step()
    sim.close()
    summary: dict[str, Any] = {"switches": len(rows), "chunks_rejected": rejected,
                               "sim_s": round(sim.time_ns / 1e9, 2), "wall_s": round(time.monotonic() - wall, 1)}
    for key in ("position_jump", "velocity_jump", "peak_acceleration", "delay_ms"):
        summary[key] = stats([r[key] for r in rows])
    if mode == "c1":
        summary["blend_ms"] = stats([r["blend_ms"] for r in rows])
    if mode == "rtc":
        summary["prefix_error"] = stats([r["prefix_error"] for r in rows if r["prefix_error"] is not None])
        summary["frozen_steps"] = stats([float(r["frozen_steps"]) for r in rows if r["frozen_steps"] is not None])
        summary["delay_steps"] = stats([float(r["delay_steps"]) for r in rows if r["delay_steps"] is not None])
    summary["per_switch"] = rows
    return summary


def markdown(report: dict[str, Any]) -> str:
    a = report["settings"]
    goal = a["max_acceleration"] / a["control_rate"]
    lines = [f"# Chunk switch smoothness, {report['machine']['date']}", "",
             f"machine: {report['machine']}", "", f"settings: {a}", "",
             f"Goal (RTC): velocity jump p99 < max_acceleration x control period = {goal:.3g} rad/s; "
             "prefix error < 1e-2 rad.", "",
             "| mode | switches | position jump p50 / p99 / max (rad) | velocity jump p50 / p99 / max (rad/s) | "
             "peak accel p50 / p99 / max (rad/s^2) | prefix error p50 / p99 / max (rad) | c1 blend p50 / max (ms) |",
             "|---|---|---|---|---|---|---|"]

    def cell(s: dict[str, float], fmt: str) -> str:
        return "-" if not s.get("n") else " / ".join(format(s[k], fmt) for k in ("p50", "p99", "max"))

    for mode, r in report["modes"].items():
        blend = f"{r['blend_ms']['p50']:.0f} / {r['blend_ms']['max']:.0f}" if "blend_ms" in r else "-"
        lines.append(f"| {mode} | {r['switches']} | {cell(r['position_jump'], '.3g')} | "
                     f"{cell(r['velocity_jump'], '.3g')} | {cell(r['peak_acceleration'], '.3g')} | "
                     f"{cell(r.get('prefix_error', {}), '.2e')} | {blend} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=100)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--engine", default="fast_flow", choices=("fast_flow", "stock"))
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a fresh tiny checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--control-rate", type=float, default=100.0, help="controller rate (Hz)")
    parser.add_argument("--horizon", type=int, default=16, help="execution horizon (chunk rows)")
    parser.add_argument("--blend-steps", type=int, default=8)
    parser.add_argument("--max-acceleration", type=float, default=20.0, help="rad/s^2, every joint")
    parser.add_argument("--max-guidance", type=float, default=10.0)
    parser.add_argument("--schedule", default="exp")
    parser.add_argument("--delay-percentile", type=float, default=99.0)
    parser.add_argument("--latency-ms", default="60,120", help="uniform model latency range (sim time)")
    parser.add_argument("--spike-fraction", type=float, default=0.05, help="chunks taking 1.5 x the max latency")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    args.latency_ms = tuple(float(v) for v in args.latency_ms.split(","))
    import torch

    torch.set_num_threads(1)
    checkpoint = args.checkpoint
    if checkpoint is None:
        from wallx_ros.policy.checkpoints.tiny_checkpoint import build_tiny_checkpoint

        checkpoint = build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="wallx_smooth_")) / "tiny")
    report: dict[str, Any] = {"machine": machine(), "settings": {k: v for k, v in vars(args).items()
                                                                 if k != "checkpoint"}, "modes": {}}
    for mode in args.modes.split(","):
        print(f"== {mode}", flush=True)
        report["modes"][mode] = run_mode(mode, args, checkpoint)
        print({k: v for k, v in report["modes"][mode].items() if k != "per_switch"}, flush=True)
    report["machine"]["load_1_5_15_after"] = os.getloadavg()
    stem = f"chunk_smoothness_{report['machine']['host']}_{dt.datetime.now():%Y-%m-%d_%H%M}{args.tag}"
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
