#!/usr/bin/env python3
"""wallx-ros-bag2dataset vs rosbag-resurrector 0.8.7 on the same bag, in the same run, next to the floor.

    source scripts/env.sh && python bench/bag2dataset_vs_resurrector.py [--seconds 20] [--reps 2]
                                                                   [--peer /tmp/res_venv/bin/resurrector]

Bag (bench/rclpy_bag.py): 3 cameras 640x480 jpeg CompressedImage at 30 Hz, joint states at 60 Hz, a JointState
teleop command at 30 Hz, serialized by rclpy as ``ros2 bag record`` stores it (resurrector cannot parse raw
Image messages at all; see rclpy_bag.py). Each tool runs as its own process on that bag, interleaved (ours,
peer, ours, peer...) so both see the same machine load; frames/s = dataset frames / wall seconds, start-up
included. Both write libsvtav1 (LeRobot's default codec, the one resurrector uses); ours is also run with
h264 (the converter's default).

The floor: LeRobot's own streaming video encoder (0.4.4, 3 camera threads, the same codec settings) fed the
same frames, already decoded, from memory: no converter that encodes with LeRobot's settings can be faster.
Next to it, the spool encoder ours uses (one process per camera) fed the same way.

Peer venv (outside the repo; Python >= 3.12 for its lerobot extra):
    python3.12 -m venv /tmp/res_venv && /tmp/res_venv/bin/pip install "rosbag-resurrector[lerobot]==0.8.7" \\
        lerobot==0.6.1 torch==2.11.0 torchvision==0.26.0 av==15.1.0

Results: bench/results/bag2dataset_vs_resurrector_<host>_<date>.json and .md (machine, load, versions).
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

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from bag_generator import ACTION_TOPIC, CAMERAS, JOINTS  # noqa: E402
from rclpy_bag import generate  # noqa: E402

DEFAULT_PEER = "/tmp/res_venv/bin/resurrector"
FPS = 30


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"host": platform.node(), "cpu": model, "cores": os.cpu_count(), "loadavg": os.getloadavg(),
            "python": platform.python_version()}


def versions(peer_python: str) -> dict[str, str]:
    from importlib.metadata import version

    out = {"ours_lerobot": version("lerobot"), "ours_av": version("av"), "ours_python": platform.python_version()}
    if peer_python:
        code = ("import importlib.metadata as m, platform; print(m.version('rosbag-resurrector'), "
                "m.version('lerobot'), m.version('av'), platform.python_version())")
        run = subprocess.run([peer_python, "-c", code], capture_output=True, text=True)
        if run.returncode == 0:
            res, lerobot, av, py = run.stdout.split()
            out.update(peer_resurrector=res, peer_lerobot=lerobot, peer_av=av, peer_python=py)
    return out


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall time, its own CPU time and peak RSS (os.wait4), the load average before."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    return {"rc": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "load1_before": round(load, 2),
            "max_rss_mb": round(usage.ru_maxrss / 1024), "log_tail": text[-1500:]}


def frames_of(root: Path) -> int:
    try:
        return int(json.loads((root / "meta" / "info.json").read_text())["total_frames"])
    except (OSError, ValueError, KeyError):
        return 0


def ours(bag: Path, out: Path, codec: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "wallx_ros.cli.bag2dataset", str(bag), "--root", str(out), "--no-progress", "-q",
           "--fps", str(FPS), "--instruction", "bench", "--state", "/joint_states", "--joints", ",".join(JOINTS),
           "--action", ACTION_TOPIC]
    for cam in CAMERAS:
        cmd += ["--camera", f"{cam}=/{cam}/image_raw/compressed"]
    params = out.parent / f"codec_{codec}.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    video_codec: {codec}\n    min_free_mb: 0.0\n")
    res = run_timed([*cmd, "--params-file", str(params)], env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    res["frames"] = frames_of(out)
    return res


def peer(resurrector: str, bag: Path, out: Path) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    mcap = next(bag.glob("*.mcap"))
    cmd = [resurrector, "export", str(mcap), "--preset", "lerobot", "--downsample", str(FPS), "--task", "bench",
           "--action-topic", ACTION_TOPIC, "-o", str(out)]
    for topic in [f"/{c}/image_raw/compressed" for c in CAMERAS] + ["/joint_states", ACTION_TOPIC]:
        cmd += ["-t", topic]
    res = run_timed(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    res["frames"] = frames_of(out)
    return res


def decoded_frames(bag: Path) -> dict[str, list[Any]]:
    from wallx_ros.dataset.bag_messages import image_rgb
    from wallx_ros.dataset.bag_reader import RosBag

    frames: dict[str, list[Any]] = {}
    with RosBag(bag) as rb:
        for cam in CAMERAS:
            topic = f"/{cam}/image_raw/compressed"
            frames[cam] = [image_rgb(m.msgtype, rb.deserialize(m)) for m in rb.messages([topic])]
    return frames


def floor_lerobot(frames: dict[str, list[Any]], codec: str, tmp: Path) -> dict[str, Any]:
    """LeRobot's StreamingVideoEncoder alone (its threads, its settings), frames from memory, no drops."""
    from wallx_ros.lerobot import versions

    versions.prepare_runtime()
    from lerobot.datasets.video_utils import StreamingVideoEncoder

    n = min(len(v) for v in frames.values())
    keys = [f"observation.images.{c}" for c in frames]
    enc = StreamingVideoEncoder(fps=FPS, vcodec=codec, queue_maxsize=n + 1)
    t0 = time.perf_counter()
    enc.start_episode(keys, tmp)
    for i in range(n):
        for key, cam in zip(keys, frames, strict=True):
            enc.feed_frame(key, frames[cam][i])
    enc.finish_episode()
    wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": round(wall, 2), "frames_per_s": round(n / wall, 1), "codec": codec,
            "load1_before": round(os.getloadavg()[0], 2)}


def floor_spool(frames: dict[str, list[Any]], codec: str, tmp: Path) -> dict[str, Any]:
    """The spool encoder of wallx_ros (one process per camera), frames from memory."""
    from wallx_ros.dataset.video_spool import SpoolVideoEncoder, VideoEncoding
    from wallx_ros.lerobot import versions

    versions.prepare_runtime()
    from lerobot.datasets.compute_stats import DEFAULT_QUANTILES
    from lerobot.datasets.video_utils import _get_codec_options

    n = min(len(v) for v in frames.values())
    keys = [f"observation.images.{c}" for c in frames]
    encoding = VideoEncoding(vcodec=codec, pix_fmt="yuv420p",
                             options={k: str(v) for k, v in _get_codec_options(codec).items()},
                             quantiles=tuple((f"q{int(q * 100):02d}", q) for q in DEFAULT_QUANTILES))
    enc = SpoolVideoEncoder(tmp / "spool", FPS, encoding)
    t0 = time.perf_counter()
    enc.start_episode(keys)
    for i in range(n):
        for key, cam in zip(keys, frames, strict=True):
            enc.feed_frame(key, frames[cam][i])
    enc.finish_episode()
    wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": round(wall, 2), "frames_per_s": round(n / wall, 1), "codec": codec,
            "load1_before": round(os.getloadavg()[0], 2)}


def best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in runs if r["rc"] == 0 and r["frames"]]
    return min(ok, key=lambda r: r["wall_s"]) if ok else None


def fps_of(run: dict[str, Any] | None) -> float:
    return run["frames"] / run["wall_s"] if run else 0.0


def markdown(report: dict[str, Any]) -> str:
    m, v = report["machine"], report["versions"]
    lines = [f"# bag2dataset vs rosbag-resurrector ({report['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores (shared with other sessions); load average before "
             f"{tuple(round(x, 2) for x in m['loadavg'])}, after "
             f"{tuple(round(x, 2) for x in report['loadavg_after'])}.",
             f"Versions: ours LeRobot {v.get('ours_lerobot')} / PyAV {v.get('ours_av')} / Python "
             f"{v.get('ours_python')}; peer rosbag-resurrector {v.get('peer_resurrector')} with LeRobot "
             f"{v.get('peer_lerobot')} / PyAV {v.get('peer_av')} / Python {v.get('peer_python')}.",
             f"Bag: {report['bag']}", "",
             "| tool | codec | frames | wall s (each run) | CPU s (each run) | load before (each run) "
             "| frames/s (best) | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for name, runs in report["runs"].items():
        b = best(runs)
        lines.append(f"| {name.split(':')[0]} | {name.split(':')[1]} | {b['frames'] if b else 0} | "
                     f"{', '.join(str(r['wall_s']) for r in runs)} | {', '.join(str(r['cpu_s']) for r in runs)} | "
                     f"{', '.join(str(r['load1_before']) for r in runs)} | "
                     f"{f'{fps_of(b):.1f}' if b else 'failed'} | {max(r['max_rss_mb'] for r in runs)} |")
    ours_av1 = best(report["runs"].get("ours:libsvtav1", []))
    peer_av1 = best(report["runs"].get("peer:libsvtav1", []))
    if ours_av1 and peer_av1:
        ratio = fps_of(ours_av1) / fps_of(peer_av1)
        lines += ["", f"**ours / peer (same bag, same codec, best run each): {ratio:.1f}x** the frames/s "
                  "(goal: >= 5x)."]
    lines += ["", "Floor (encoding alone, the same frames decoded in memory, 3 cameras):", ""]
    for f in report["floors"]:
        lines.append(f"- {f['what']}: {f['frames']} frames in {f['wall_s']} s = **{f['frames_per_s']} frames/s** "
                     f"({f['codec']}, load before {f['load1_before']})")
    lines += ["", "Ours: wallx-ros-bag2dataset (flags only), jpeg decoded per frame, frames spooled to disk and "
              "encoded by one process per camera with LeRobot's codec settings, LeRobot's writer for everything "
              "else. Peer: `resurrector export --preset lerobot` (LeRobot's writer: a PNG per frame and camera, "
              "encoded at save_episode in a process pool)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--peer", default=os.environ.get("WALLX_BENCH_RESURRECTOR", DEFAULT_PEER))
    ap.add_argument("--workdir", default="", help="bags and datasets (default: a temp dir, removed)")
    ap.add_argument("--out", default=str(HERE / "results"))
    a = ap.parse_args()
    peer_python = str(Path(a.peer).with_name("python")) if Path(a.peer).is_file() else ""
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="wallx_bench_res_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
                              "versions": versions(peer_python), "runs": {}, "floors": []}
    try:
        bag = work / "bag"
        shutil.rmtree(bag, ignore_errors=True)
        report["bag"] = generate(bag, a.seconds)
        print(f"[bench] bag: {report['bag']}", flush=True)
        for rep in range(a.reps):
            for name in ("ours:libsvtav1", "peer:libsvtav1", "ours:h264"):
                if name.startswith("peer") and not peer_python:
                    continue
                r = peer(a.peer, bag, work / "ds_peer") if name.startswith("peer") else \
                    ours(bag, work / "ds_ours", name.split(":")[1])
                report["runs"].setdefault(name, []).append(r)
                print(f"[bench] {name} #{rep}: {r['frames']} frames, wall {r['wall_s']} s, cpu {r['cpu_s']} s, "
                      f"rc {r['rc']}", flush=True)
        frames = decoded_frames(bag)
        for what, fn in (("LeRobot's StreamingVideoEncoder (in-process threads)", floor_lerobot),
                         ("wallx_ros spool encoder (a process per camera)", floor_spool)):
            tmp = work / "floor"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            result = fn(frames, "libsvtav1", tmp)
            report["floors"].append({"what": what, **result})
            print(f"[bench] floor {what}: {result}", flush=True)
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    report["loadavg_after"] = os.getloadavg()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bag2dataset_vs_resurrector_{platform.node()}_{dt.date.today().isoformat()}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
