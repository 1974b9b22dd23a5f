#!/usr/bin/env python
"""Compare the two supported stacks on CPU: kilted (ROS 2 Kilted + LeRobot 0.4.4, Python 3.11, CPU torch 2.13)
and jazzy (ROS 2 Jazzy + LeRobot 0.6.1, Python 3.12, torch 2.11 CUDA build running on CPU).

    python bench/stack_bench.py                 # both stacks (each measured by its own venv's python)
    python bench/stack_bench.py --setup         # ... plus set-up time from a fresh clone (rebuilds both venvs
                                                #     in a temporary clone; pip's cache is warm: see the note)
    python bench/stack_bench.py --stacks jazzy --iters 5 --no-compile

Per stack: import times (fresh processes), tiny WallX diffusion chunk time through wallx_ros's backend with
1 torch thread (and fast mode, fewer iterations), torch.compile of the WallX model (first-call cost and
steady-state gain), venv size. Writes bench/results/stacks_<date>.json and .md naming the machine.
Any python can run the driver; it runs ``<venv>/bin/python bench/stack_bench.py --measure`` per stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENVS = {"kilted": REPO / ".venv", "jazzy": REPO / ".venv-jazzy"}


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "platform": platform.platform(),
            "loadavg_start": os.getloadavg(), "date": dt.datetime.now().isoformat(timespec="seconds")}


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "median": round(statistics.median(ordered), 1), "min": round(ordered[0], 1),
            "max": round(ordered[-1], 1)}


# -- measured inside one stack's venv -----------------------------------------------------------------------
IMPORT_SNIPPET = """
import json, time
t0 = time.perf_counter(); import torch; t1 = time.perf_counter()
import rclpy; t2 = time.perf_counter()
from wallx_ros.lerobot import wallx_model; wallx_model.api(); t3 = time.perf_counter()
print(json.dumps({"torch_s": t1 - t0, "rclpy_s": t2 - t1, "lerobot_wallx_s": t3 - t2, "total_s": t3 - t0}))
"""


def measure_imports(runs: int) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", IMPORT_SNIPPET], capture_output=True, text=True, cwd=REPO)
        if out.returncode:
            raise RuntimeError(f"import timing failed: {out.stderr[-1500:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = results[0].keys()
    return {k: {"first": round(results[0][k], 2), "median": round(statistics.median(r[k] for r in results), 2)}
            for k in keys} | {"runs": runs}


def measure_model(work: Path, iters: int, fast_iters: int, compile_model: bool) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from wallx_ros.core.types import Observation
    from wallx_ros.lerobot import versions
    from wallx_ros.policy import BackendConfig, load_backend
    from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS, TinyCheckpointSpec, build_tiny_checkpoint

    rng = np.random.default_rng(0)
    obs = Observation(images={c: rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                      state=rng.normal(size=14).astype(np.float32), instruction="insert the peg", stamp_ns=0)
    out: dict[str, Any] = {"lerobot": ".".join(map(str, versions.lerobot_version())),
                           "transformers": ".".join(map(str, versions.transformers_version())),
                           "torch": torch.__version__, "python": platform.python_version(), "threads": 1}
    t0 = time.perf_counter()
    ckpt = build_tiny_checkpoint(work / "tiny_diffusion")
    out["build_tiny_checkpoint_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    # engine stock: LeRobot's own predict_action_chunk on both lines (the fast flow engine runs on 0.4.x only; its
    # gain is measured by bench/inference), so the rows compare the two LeRobot lines like for like
    backend = load_backend(BackendConfig(checkpoint_dir=ckpt, allow_random_weights=True, seed=0, num_threads=1,
                                         engine="stock"))
    out["load_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    reference = backend.predict_chunk(obs).actions
    out["first_chunk_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    backend.predict_chunk(obs)

    def timed(n: int) -> tuple[list[float], list[float]]:
        total, model = [], []
        for _ in range(n):
            t = time.perf_counter()
            chunk = backend.predict_chunk(obs)
            total.append((time.perf_counter() - t) * 1e3)
            model.append(chunk.timings_ms["inference"])
        return total, model

    total, model = timed(iters)
    out["diffusion_chunk_ms"] = stats(total)
    out["diffusion_model_ms"] = stats(model)
    if compile_model:
        inner = backend._policy.model.model  # the Qwen2.5-VL + MoE transformer that runs every flow step
        backend._policy.model.model = torch.compile(inner)
        try:
            t0 = time.perf_counter()
            compiled_first = backend.predict_chunk(obs).actions
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            backend.predict_chunk(obs)
            second = time.perf_counter() - t0
            ctotal, cmodel = timed(iters)
            out["compile"] = {
                "target": "policy.model.model", "first_call_s": round(first, 1), "second_call_s": round(second, 2),
                "chunk_ms": stats(ctotal), "model_ms": stats(cmodel),
                "gain_x": round(statistics.median(total) / statistics.median(ctotal), 2),
                "max_abs_diff_vs_eager": float(np.abs(compiled_first - reference).max()),
            }
        except Exception as err:  # report, do not hide: torch.compile support differs per torch build
            out["compile"] = {"target": "policy.model.model", "error": f"{type(err).__name__}: {err}"[:500]}
        finally:
            backend._policy.model.model = inner
    if fast_iters:
        fast_ckpt = build_tiny_checkpoint(work / "tiny_fast", TinyCheckpointSpec(mode="fast", seed=1))
        fast = load_backend(BackendConfig(checkpoint_dir=fast_ckpt, allow_random_weights=True, seed=0, num_threads=1,
                                          fast_action_tokens_only=True, fast_min_new_tokens=100))
        fast.predict_chunk(obs)
        times = []
        for _ in range(fast_iters):
            t = time.perf_counter()
            fast.predict_chunk(obs)
            times.append((time.perf_counter() - t) * 1e3)
        out["fast_chunk_ms_100_tokens"] = stats(times)
        out["fast_generation_patched"] = versions.fast_generation_patch_needed()
    return out


def measure(args: argparse.Namespace) -> None:
    result: dict[str, Any] = {"imports": measure_imports(args.import_runs)}
    with tempfile.TemporaryDirectory(prefix="wallx_stack_bench_") as tmp:
        result["model"] = measure_model(Path(tmp), args.iters, args.fast_iters, not args.no_compile)
    print("STACK_BENCH " + json.dumps(result), flush=True)


# -- driver -----------------------------------------------------------------------------------------------
def dir_size_gb(path: Path) -> float:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[0]) / 1e9, 2)


def stack_env(stack: str, venv: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)  # another venv's ROS libraries; the bootstrapper re-executes with its own ...
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)  # ... unless this guard says it already did
    env.update({"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                "AMENT_PREFIX_PATH": str(venv), "WALLX_STACK": stack, "PYTHONPATH": str(REPO),
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "OMP_NUM_THREADS": "1"})
    return env


def time_fresh_setup(stacks: list[str]) -> dict[str, Any]:
    """`bash scripts/setup.sh --stack S` in a fresh clone of this checkout (HEAD), one stack after the other."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wallx_setup_bench_", dir=str(REPO.parent)) as tmp:
        clone = Path(tmp) / "wallx_ros"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        for stack in stacks:
            t0 = time.perf_counter()
            run = subprocess.run(["bash", "scripts/setup.sh", "--stack", stack], cwd=clone, capture_output=True,
                                 text=True)
            seconds = time.perf_counter() - t0
            venv = clone / (".venv" if stack == "kilted" else f".venv-{stack}")
            out[stack] = {"setup_s": round(seconds, 1), "ok": run.returncode == 0,
                          "venv_gb": dir_size_gb(venv) if venv.is_dir() else None,
                          "loadavg_after": os.getloadavg()}
            if run.returncode:
                out[stack]["stderr_tail"] = run.stderr[-1500:]
    return out


def write_report(report: dict[str, Any]) -> Path:
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d_%H%M")
    json_path = results / f"stacks_{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    lines = [f"# Stacks on CPU: kilted vs jazzy ({m['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, load average {m['loadavg_start'][0]:.1f} "
             f"at start / {m['loadavg_end'][0]:.1f} at end (shared machine: other jobs were running). "
             "Tiny WallX (2 text layers, hidden 64), 3 cameras 640x480 -> (192, 256), 1 torch thread, "
             "times through wallx_ros's WallXBackend.predict_chunk (pre + model + post).", "",
             "| | " + " | ".join(report["stacks"]) + " |", "|---|" + "---|" * len(report["stacks"])]

    def row(label: str, fn: Any) -> None:
        cells = []
        for s in report["stacks"]:
            try:
                cells.append(str(fn(report["results"][s])))
            except (KeyError, TypeError):
                cells.append("n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("Python / torch", lambda r: f"{r['model']['python']} / {r['model']['torch']}")
    row("LeRobot / transformers", lambda r: f"{r['model']['lerobot']} / {r['model']['transformers']}")
    row("machine load (1-min average) before / after", lambda r: "{before} / {after}".format(**r["loadavg_1min"]))
    row("venv size (GB)", lambda r: r["venv_gb"])
    row("set-up from a fresh clone (s)", lambda r: r["setup"]["setup_s"])
    row("import torch, first / median (s)", lambda r: f"{r['imports']['torch_s']['first']} / "
                                                         f"{r['imports']['torch_s']['median']}")
    row("import rclpy, median (s)", lambda r: r["imports"]["rclpy_s"]["median"])
    row("import LeRobot wall_x, median (s)", lambda r: r["imports"]["lerobot_wallx_s"]["median"])
    row("all imports, median (s)", lambda r: r["imports"]["total_s"]["median"])
    row("build tiny checkpoint (s)", lambda r: r["model"]["build_tiny_checkpoint_s"])
    row("load checkpoint (s)", lambda r: r["model"]["load_s"])
    row("first chunk (ms)", lambda r: r["model"]["first_chunk_ms"])
    row("diffusion chunk, median [min-max] (ms)", lambda r: "{median} [{min}-{max}]".format(
        **r["model"]["diffusion_chunk_ms"]))
    row("  of which model (ms)", lambda r: r["model"]["diffusion_model_ms"]["median"])
    row("torch.compile first call (s)", lambda r: r["model"]["compile"].get("first_call_s")
        or r["model"]["compile"]["error"][:80])
    row("compiled chunk, median [min] (ms)", lambda r: "{median} [{min}]".format(**r["model"]["compile"]["chunk_ms"]))
    row("torch.compile gain (x)", lambda r: r["model"]["compile"]["gain_x"])
    row("compiled vs eager max abs diff", lambda r: f"{r['model']['compile']['max_abs_diff_vs_eager']:.1e}")
    row("fast mode chunk, 100 tokens, median [min] (ms)", lambda r: "{median} [{min}]".format(
        **r["model"]["fast_chunk_ms_100_tokens"]))
    if report.get("notes"):
        lines += ["", *report["notes"]]
    md_path = json_path.with_suffix(".md")
    md_path.write_text("\n".join(lines) + "\n")
    return md_path


def drive(args: argparse.Namespace) -> None:
    stacks = args.stacks.split(",")
    report: dict[str, Any] = {"machine": machine_info(), "stacks": stacks, "results": {}, "notes": [
        "- Fast mode: LeRobot 0.4.4 hard-codes Qwen's token ids, so its tiny fast checkpoint carries Qwen's full "
        "~151.7k-token vocabulary; on 0.6 the tiny vocabulary has ~350 tokens. The output projection over the "
        "vocabulary dominates a tiny model's step, so that row compares the two tiny models, not the two lines "
        "(a real WALL-OSS-fast has the same vocabulary on both).",
        "- torch.compile: `torch.compile(policy.model.model)` (the Qwen2.5-VL + MoE transformer that every flow "
        "step runs), inductor on CPU (gcc); the first call includes compilation, later calls reuse it.",
        "- The machine is shared with other jobs: compare the min columns first, and the load averages.",
    ]}
    for stack in stacks:
        venv = VENVS[stack]
        python = venv / "bin" / "python"
        if not python.is_file():
            report["results"][stack] = {"error": f"no venv at {venv}: bash scripts/setup.sh --stack {stack}"}
            continue
        cmd = [str(python), str(Path(__file__).resolve()), "--measure", "--iters", str(args.iters),
               "--fast-iters", str(args.fast_iters), "--import-runs", str(args.import_runs)]
        if args.no_compile:
            cmd.append("--no-compile")
        print(f"[bench] {stack}: {' '.join(cmd)}", flush=True)
        load_before = os.getloadavg()[0]
        run = subprocess.run(cmd, capture_output=True, text=True, env=stack_env(stack, venv), cwd=REPO)
        line = next((ln for ln in run.stdout.splitlines() if ln.startswith("STACK_BENCH ")), None)
        if run.returncode or line is None:
            report["results"][stack] = {"error": run.stderr[-2000:]}
            continue
        result = json.loads(line[len("STACK_BENCH "):])
        result["venv_gb"] = dir_size_gb(venv)
        result["loadavg_1min"] = {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1)}
        report["results"][stack] = result
    if args.setup:
        for stack, res in time_fresh_setup(stacks).items():
            report["results"].setdefault(stack, {})["setup"] = res
        report["notes"].append("Set-up time: `bash scripts/setup.sh --stack S` in a fresh clone, one stack after the "
                               "other, with pip's download cache already warm (a machine that never downloaded the "
                               "wheels adds the download: ~145 MB for kilted, ~2.2 GB for jazzy).")
    report["machine"]["loadavg_end"] = os.getloadavg()
    md = write_report(report)
    print(md.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", default="kilted,jazzy")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--fast-iters", type=int, default=3)
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--setup", action="store_true", help="also time set-up from a fresh clone (slow)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
