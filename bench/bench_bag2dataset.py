"""Throughput of wallx-ros-bag2dataset vs a peer rosbag -> LeRobot converter, on the same generated bags.

    python bench/bench_bag2dataset.py [--raw-seconds 30] [--compressed-seconds 180] [--reps 2]
                                      [--peer-python /path/to/peer_venv/bin/python]

Bags: 3 cameras 640x480 at 30 Hz (rgb8 Image, and jpeg CompressedImage) + joint states at 60 Hz + a teleop
JointState command, mcap. Each tool runs as its own process on the same bag, interleaved (ours, peer, ours,
peer, ...) so that both see the same machine load; we record wall time, the process's CPU time (user+sys of
the child, all its threads) and frames/s = dataset frames / wall seconds. Startup (imports) is included:
it is what a user waits for.

Peer: forge-robotics (PyPI), the most complete pip-installable rosbag2/MCAP -> LeRobot v3 converter found;
it conflicts with nothing but is installed in its own venv OUTSIDE the repo:
    python3.11 -m venv /tmp/peer_venv && /tmp/peer_venv/bin/pip install "forge-robotics[mcap,lerobot]" av
and driven through its public API by bench/peer_forge_driver.py (an explicit topic config: the same
cameras, state and action, synced on the face camera). Its CLI alone syncs on the busiest topic and
writes 60 "fps" frames/s of joint states instead.

Results: bench/results/bag2dataset_<host>_<date>.json and .md (machine: CPU model, cores, load, memory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bag_generator import ACTION_TOPIC, CAMERAS, JOINTS, generate  # noqa: E402

DEFAULT_PEER = ("/work/scratch5/peer_venv/bin/python", "/tmp/peer_venv/bin/python")


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in
                                                    Path("/proc/meminfo").read_text().splitlines()[:3])}
    return {"host": platform.node(), "cpu": model, "cores": os.cpu_count(), "loadavg": os.getloadavg(),
            "mem_total_mb": mem.get("MemTotal"), "mem_available_mb": mem.get("MemAvailable"),
            "python": platform.python_version()}


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall time, and that child's own CPU time and peak RSS (os.wait4)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {"rc": proc.returncode, "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "load1_before": round(load, 2), "max_rss_mb": round(usage.ru_maxrss / 1024),
            "stdout": stdout[-2000:], "stderr": stderr[-3000:]}


def ours(bag: Path, out: Path, transport: str, tmp: Path) -> dict[str, Any]:
    params = tmp / f"params_{transport}.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        "cameras": list(CAMERAS), "camera_transport": transport, "joint_names": list(JOINTS),
        "action_topic": ACTION_TOPIC, "action_type": "JointState", "fps": 30, "instruction": "benchmark",
        "repo_id": "local/bench", "use_videos": True, "video_codec": "h264", "min_free_mb": 0.0}}}))
    shutil.rmtree(out, ignore_errors=True)
    res = run_timed([sys.executable, "-m", "wallx_ros.cli.bag2dataset", str(bag), "--root", str(out),
                     "--params-file", str(params), "--no-progress", "-q"])
    res["frames"] = _frames(out)
    return res


def peer(peer_python: str, bag: Path, out: Path, transport: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    mcap = next(bag.glob("*.mcap"))
    res = run_timed([peer_python, str(HERE / "peer_forge_driver.py"), str(mcap), str(out), "--fps", "30",
                     "--transport", transport])
    res["frames"] = _frames(out)
    try:
        res["peer_internal_s"] = json.loads(res["stdout"].strip().splitlines()[-1])["seconds"]
    except (IndexError, ValueError, KeyError):
        pass
    return res


def _frames(root: Path) -> int:
    try:
        return int(json.loads((root / "meta" / "info.json").read_text())["total_frames"])
    except (OSError, ValueError, KeyError):
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw-seconds", type=float, default=30.0)
    ap.add_argument("--compressed-seconds", type=float, default=180.0)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--peer-python", default=os.environ.get("WALLX_BENCH_PEER_PYTHON", ""))
    ap.add_argument("--workdir", default="", help="where bags and datasets go (default: a temp dir, removed)")
    ap.add_argument("--out", default=str(HERE / "results"))
    a = ap.parse_args()
    peer_python = a.peer_python or next((p for p in DEFAULT_PEER if Path(p).is_file()), "")
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="wallx_bench_bag_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
                              "peer": None, "cases": []}
    if peer_python:
        ver = subprocess.run([peer_python, "-c", "import importlib.metadata as m; print(m.version('forge-robotics'))"],
                             capture_output=True, text=True)
        report["peer"] = {"name": "forge-robotics", "version": ver.stdout.strip(), "python": peer_python}
    else:
        report["peer_missing"] = ("no peer venv found: install forge-robotics as described in this script's doc "
                                  "and pass --peer-python")
    try:
        for transport, seconds in (("raw", a.raw_seconds), ("compressed", a.compressed_seconds)):
            if seconds <= 0:
                continue
            bag = work / f"bag_{transport}"
            shutil.rmtree(bag, ignore_errors=True)
            info = generate(bag, seconds, transport=transport)
            case: dict[str, Any] = {"transport": transport, "bag": info, "ours": [], "peer": []}
            print(f"[bench] {transport} bag: {info}", flush=True)
            for rep in range(a.reps):
                r = ours(bag, work / "ds_ours", transport, work)
                case["ours"].append(r)
                print(f"[bench] ours {transport} #{rep}: {r['frames']} frames, wall {r['wall_s']} s, "
                      f"cpu {r['cpu_s']} s, rc {r['rc']}", flush=True)
                if peer_python:
                    p = peer(peer_python, bag, work / "ds_peer", transport)
                    case["peer"].append(p)
                    print(f"[bench] peer {transport} #{rep}: {p['frames']} frames, wall {p['wall_s']} s, "
                          f"cpu {p['cpu_s']} s, rc {p['rc']}", flush=True)
            shutil.rmtree(bag, ignore_errors=True)
            report["cases"].append(case)
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_after"] = os.getloadavg()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bag2dataset_{platform.node()}_{dt.date.today().isoformat()}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in runs if r["rc"] == 0 and r["frames"]]
    return min(ok, key=lambda r: r["wall_s"]) if ok else None


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"# bag2dataset throughput ({report['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_total_mb']} MB RAM; load average before "
             f"{tuple(round(x, 2) for x in m['loadavg'])}, after {tuple(round(x, 2) for x in m['loadavg_after'])} "
             "(a shared machine: other jobs ran at the same time, so runs are interleaved and both are listed).",
             "", f"Peer: {report['peer'] or report.get('peer_missing')}", "",
             "| bag | tool | frames | wall s (each run) | CPU s (each run) | frames/s (best wall) | CPU ms/frame "
             "| peak RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for case in report["cases"]:
        b = case["bag"]
        for tool in ("ours", "peer"):
            runs = case[tool]
            if not runs:
                continue
            best = _best(runs)
            fps = f"{best['frames'] / best['wall_s']:.1f}" if best else "failed"
            cpu = f"{1000 * best['cpu_s'] / best['frames']:.1f}" if best else "-"
            lines.append(f"| {case['transport']} {b['seconds']:g} s ({b['bag_mb']:g} MB) | {tool} | "
                         f"{best['frames'] if best else 0} | {', '.join(str(r['wall_s']) for r in runs)} | "
                         f"{', '.join(str(r['cpu_s']) for r in runs)} | {fps} | {cpu} | "
                         f"{max(r['max_rss_mb'] for r in runs)} |")
        o, p = _best(case["ours"]), _best(case["peer"])
        if o and p:
            speed = (o["frames"] / o["wall_s"]) / (p["frames"] / p["wall_s"])
            lines.append(f"| | **ours / peer** | | | | **{speed:.2f}x** "
                         f"| {(p['cpu_s'] / p['frames']) / (o['cpu_s'] / o['frames']):.2f}x less CPU | |")
    lines += ["", "Ours: wallx-ros-bag2dataset, LeRobot 0.4.4 LeRobotDataset through the recorder's DatasetWriter, "
              "h264 (LeRobot's settings: GOP 2, crf 30), streaming encoding with backpressure, per-frame stats. "
              "Peer: forge-robotics through its public API, its own LeRobot v3 writer, libx264 crf 23 (default GOP)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
