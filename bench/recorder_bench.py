#!/usr/bin/env python3
"""Recorder throughput: 3 cameras x 30 fps 640x480 rgb8 + joint states + teleop action over real DDS.

    source scripts/env.sh && python bench/recorder_bench.py [--seconds 20] [--codec h264] [--codec libsvtav1]

For each codec: starts the recorder node (its own process, the shipped Fast DDS profile), a publisher
process (cameras at 30 Hz, joint_states at 100 Hz, action at 50 Hz, all stamped with the ROS clock),
records one episode of ``--seconds``, saves it, and measures:

* dropped frames: ``seconds * fps`` expected frames minus frames saved, and the recorder's own count
  (alignment drops: a stale stream at a frame time; writer overruns: frames the writer could not take);
* DDS delivery: camera messages published vs received by the recorder;
* CPU of the recorder process (user+sys seconds per wall second, 1.0 = one core) while recording;
* disk: bytes the recorder wrote per second while recording (PNG frames), and the dataset size;
* encode time per episode (LeRobot save_episode: video encoding) and commit time (finalize + journal);
  with the spool encoder (``stream:<codec>``) how long the encoders ran on after the episode ended
  (``encode_tail_s``), and, sampled during the episode, the encoders' backlog and the spool's size on disk.

Results go to bench/results/recorder_bench.json and .md with the machine (CPU model, cores, load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "test"))
from ros_harness import configure_ros_environment, subprocess_env  # noqa: E402

CAMERAS = ("face_view", "left_wrist_view", "right_wrist_view")
JOINTS = tuple(f"{s}_{j}" for s in ("left", "right") for j in ("waist", "shoulder", "elbow", "forearm_roll",
                                                                  "wrist_angle", "wrist_rotate", "gripper"))
H, W, FPS = 480, 640, 30
WATERMARK: list[float] = []  # --watermark: the recorder's watermark_delay_s (default: the node's)
GAP_POLICY: list[str] = ["split"]  # --gap-policy of the recorder
NICE: list[int] = [0]  # --nice: niceness of the recorder and the camera publisher (their encoders: +encoder_nice)

PUBLISHER = r'''
import sys, time, threading
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from wallx_ros.nodes.ros_conversions import time_from_ns
cams, joints, seconds = sys.argv[1].split(","), sys.argv[2].split(","), float(sys.argv[3])
h, w, fps = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rclpy.init()
node = rclpy.create_node("bench_publisher")
pubs = [node.create_publisher(Image, f"/{c}/image_raw", qos_profile_sensor_data) for c in cams]
jpub = node.create_publisher(JointState, "/joint_states", 10)
apub = node.create_publisher(JointState, "/wallx_teleop/action", 10)
rng = np.random.default_rng(0)
# camera-like content: a lit gradient scene with a moving object and sensor noise (pure noise would be the
# codecs' pathological worst case, not what a camera delivers)
yy, xx = np.mgrid[0:h, 0:w]
base = np.stack([96 + 80 * xx / w, 80 + 60 * yy / h, 120 + 40 * np.sin(xx / 23.0)], axis=-1)
frames = []
for i in range(30):
    img = base.copy()
    x0, y0 = (i * w) // 30, h // 3 + int(20 * np.sin(i / 5))
    img[y0:y0 + h // 4, x0:x0 + w // 6] = (200, 60, 40)
    frames.append(np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8))
payloads = [f.tobytes() for f in frames]
print("READY", flush=True)
sys.stdin.readline()  # go
stop = time.monotonic() + seconds + 8.0  # the episode plus start-up and saving margins
counts = {"camera": 0, "joints": 0, "action": 0}
gaps = {}  # stream -> stamps gaps > 100 ms (the publisher itself stalled: the data has a hole)
def loop(period, fn):
    nxt = time.monotonic()
    last = None
    name = fn.__name__
    while time.monotonic() < stop:
        fn()
        now = time.monotonic()
        if last is not None and now - last > 0.1:
            gaps[name] = gaps.get(name, 0) + 1
        last = now
        nxt += period
        time.sleep(max(0.0, nxt - time.monotonic()))
k = [0]
published = {"camera": [], "joints": [], "action": []}  # stamps (ns) actually published, for the bench
def cams_fn():
    now = node.get_clock().now().nanoseconds
    stamp = time_from_ns(now)
    published["camera"].append(now)
    for i, p in enumerate(pubs):
        m = Image(); m.header.stamp = stamp; m.height, m.width, m.encoding, m.step = h, w, "rgb8", w * 3
        m.data = payloads[(k[0] + i) % len(payloads)]
        p.publish(m); counts["camera"] += 1
    k[0] += 1
def joints_fn():
    now = node.get_clock().now().nanoseconds
    published["joints"].append(now)
    m = JointState(); m.header.stamp = time_from_ns(now)
    m.name = joints; m.position = [0.001 * k[0]] * len(joints); jpub.publish(m); counts["joints"] += 1
def action_fn():
    now = node.get_clock().now().nanoseconds
    published["action"].append(now)
    m = JointState(); m.header.stamp = time_from_ns(now)
    m.name = joints; m.position = [-0.001 * k[0]] * len(joints); apub.publish(m); counts["action"] += 1
threads = [threading.Thread(target=loop, args=(1 / fps, cams_fn)),
           threading.Thread(target=loop, args=(0.01, joints_fn)),
           threading.Thread(target=loop, args=(0.02, action_fn))]
for t in threads: t.start()
for t in threads: t.join()
import json
with open(sys.argv[7], "w") as f:
    json.dump(published, f)
print("COUNTS " + " ".join(f"{k}={v}" for k, v in counts.items())
      + " " + " ".join(f"gaps_{k}={v}" for k, v in gaps.items()), flush=True)
node.destroy_node(); rclpy.shutdown()
'''


def machine() -> dict[str, object]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    return {"cpu": model, "logical_cores": os.cpu_count(), "load_avg_1_5_15": os.getloadavg(),
            "versions": {p: version(p) for p in ("lerobot", "av", "ros-rclpy")},
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "python": platform.python_version(),
            "kernel": platform.release()}


def call(service: str) -> str:
    """ros2-free service call through a throw-away rclpy process (keeps this process ROS-free)."""
    code = ("import rclpy,sys\nfrom std_srvs.srv import Trigger\nrclpy.init()\nn=rclpy.create_node('bench_client')\n"
            f"c=n.create_client(Trigger,'/wallx_recorder/{service}')\nassert c.wait_for_service(timeout_sec=60)\n"
            "f=c.call_async(Trigger.Request())\nrclpy.spin_until_future_complete(n,f,timeout_sec=600)\n"
            "print(f.result().success, f.result().message)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                         timeout=700)
    return out.stdout.strip() or out.stderr.strip()[-500:]


def dir_size(path: Path) -> int:
    """Bytes under ``path``; files may vanish meanwhile (the spool's encoders delete what they encoded)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


class Diagnostics:
    """The recorder's /diagnostics (per-stream sample counters), received in a background thread."""

    def __init__(self) -> None:
        import threading

        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        rclpy.init()
        self._node = rclpy.create_node("bench_diagnostics")
        self._last: dict[str, int] = {}
        self.values: dict[str, str] = {}
        self._node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 10)
        self._thread = threading.Thread(target=rclpy.spin, args=(self._node,), daemon=True)
        self._thread.start()

    def _on(self, msg: object) -> None:
        for status in msg.status:  # type: ignore[attr-defined]
            if status.name.startswith("wallx_recorder"):
                self._last = {kv.key[len("samples/"):]: int(kv.value) for kv in status.values
                              if kv.key.startswith("samples/")}
                self.values = {kv.key: kv.value for kv in status.values}

    def samples(self) -> dict[str, int]:
        time.sleep(1.2)  # one more diagnostics period
        return dict(self._last)


def source_complete_frames(published: dict[str, list[int]], start_ns: int, stop_ns: int, fps: int,
                           max_age_ns: int = 100_000_000, action_max_age_ns: int = 500_000_000) -> int:
    """Frames of a grid over the episode for which the publisher sent every stream within its max age (the
    recorder's rules: image nearest, state and action latest). Frames outside it were never sendable: a
    publisher stall (machine load) is a gap at the source, not a frame the recorder lost."""
    import bisect

    cams, joints, action = (sorted(published[k]) for k in ("camera", "joints", "action"))
    first = next((t for t in cams if t >= start_ns), None)
    if first is None:
        return 0
    count, t = 0, first
    while t <= stop_ns:
        i = bisect.bisect_left(cams, t)
        near = min((abs(cams[j] - t) for j in (i - 1, i) if 0 <= j < len(cams)), default=max_age_ns + 1)
        ok = near <= max_age_ns
        for series, age in ((joints, max_age_ns), (action, action_max_age_ns)):
            j = bisect.bisect_right(series, t) - 1
            ok = ok and j >= 0 and t - series[j] <= age
        count += ok
        t += round(1e9 / fps)
    return count


def run(codec: str, seconds: float, workdir: Path, diagnostics: Diagnostics, size: tuple[int, int] = (H, W),
        fps: int = FPS) -> dict[str, object]:
    name = codec.replace(":", "_")
    root = workdir / f"ds_{name}"
    params = workdir / f"recorder_{name}.yaml"
    params.write_text(json.dumps({"wallx_recorder": {"ros__parameters": {
        "root": str(root), "repo_id": "local/bench", "fps": fps,
        "video_codec": "h264" if codec == "idle" else codec.split(":")[-1],
        "streaming_encoding": codec.startswith("stream:"), "cameras": list(CAMERAS), "progress_log_period_s": 10.0,
        "joint_names": list(JOINTS), "instruction": "bench", "robot_type": "aloha", "min_free_mb": 100.0,
        "gap_policy": GAP_POLICY[0], **({"watermark_delay_s": WATERMARK[0]} if WATERMARK else {})}}}))
    log = open(workdir / f"recorder_{name}.log", "w")  # noqa: SIM115
    rec = subprocess.Popen([sys.executable, "-m", "wallx_ros.nodes.recorder_node", "--ros-args", "--params-file",
                            str(params)], stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(), cwd=str(REPO),
                           preexec_fn=lambda: os.nice(NICE[0]) and None)
    stamps_path = workdir / f"published_{name}.json"
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER, ",".join(CAMERAS), ",".join(JOINTS), str(seconds),
                            str(size[0]), str(size[1]), str(fps), str(stamps_path)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env(),
                           cwd=str(REPO), preexec_fn=lambda: os.nice(NICE[0]) and None)
    try:
        assert pub.stdout is not None and pub.stdin is not None
        assert pub.stdout.readline().strip() == "READY"
        proc = psutil.Process(rec.pid)
        deadline = time.monotonic() + 120
        while "ready:" not in (workdir / f"recorder_{name}.log").read_text():
            assert time.monotonic() < deadline and rec.poll() is None, "recorder did not start"
            time.sleep(0.2)
        time.sleep(3.0)  # DDS discovery
        pub.stdin.write("go\n")
        pub.stdin.flush()
        time.sleep(1.0)  # cameras flowing before the episode starts
        received0, t_r0 = diagnostics.samples(), time.monotonic()
        start_answer = call("start_episode") if codec != "idle" else "(idle baseline: no episode)"
        cpu0, io0, t0 = proc.cpu_times(), proc.io_counters(), time.monotonic()
        peaks = {"encoder_backlog_frames": 0, "spool_mb": 0.0, "spilled_frames": 0, "load1": 0.0}
        spool = root.parent / f".{root.name}.wallx_ros" / "spool"
        while time.monotonic() < t0 + seconds:
            time.sleep(min(2.0, max(0.0, t0 + seconds - time.monotonic())))
            values = diagnostics.values
            peaks["encoder_backlog_frames"] = max(peaks["encoder_backlog_frames"],
                                                  int(values.get("encoder_backlog_frames", 0)))
            peaks["spilled_frames"] = max(peaks["spilled_frames"], int(values.get("spilled_frames", 0)))
            peaks["spool_mb"] = max(peaks["spool_mb"], round(dir_size(spool) / 1e6, 1) if spool.is_dir() else 0.0)
            peaks["load1"] = max(peaks["load1"], round(os.getloadavg()[0], 2))
        cpu1, io1, t1 = proc.cpu_times(), proc.io_counters(), time.monotonic()
        stop_answer = call("stop_episode") if codec != "idle" else ""
        t_stop = time.monotonic()
        received1, t_r1 = diagnostics.samples(), time.monotonic()
        final = dict(diagnostics.values)
        counts_line = pub.stdout.readline().strip()
        pub.wait(30)
    finally:
        rec.send_signal(2)
        try:
            rec.wait(120)
        except subprocess.TimeoutExpired:
            rec.kill()
        log.close()
        if pub.poll() is None:
            pub.kill()
    text = (workdir / f"recorder_{name}.log").read_text()
    saved = [m.groups() for m in re.finditer(
        r"\]: episode (\d+) saved: (\d+) frames \(([\d.]+) s\), ended by (\w+), (\d+) held; encode ([\d.]+) s \(of "
        r"which waiting for the video encoders ([\d.]+) s\), commit ([\d.]+) s", text)]
    published = dict(kv.split("=") for kv in counts_line.replace("COUNTS ", "").split()) if counts_line else {}
    wall = t1 - t0
    received = {k: received1.get(k, 0) - received0.get(k, 0) for k in received1}
    result: dict[str, object] = {"codec": codec, "size_hw": list(size), "fps": fps,
                                 "start": start_answer, "stop": stop_answer,
                                 "episode_wall_s": round(t1 - t0, 2), "stop_call_s": round(t_stop - t1, 2),
                                 "received_during_episode": received,
                                 # counted from before the start call to after the stop call (its watermark wait)
                                 "received_window_s": round(t_r1 - t_r0, 2),
                                 "published": {k: int(v) for k, v in published.items()},
                                 "recorder_cpu_cores": round(((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system))
                                                             / wall, 2),
                                 "disk_write_mb_s": round((io1.write_bytes - io0.write_bytes) / wall / 1e6, 1),
                                 "dataset_mb": round(dir_size(root) / 1e6, 1)}
    started = re.search(r"\[INFO\] \[(\d+)\.(\d+)\] \[wallx_recorder\]: episode 0 started", text)
    stopped = re.search(r"~/stop_episode: the episode ends at (\d+) ns", text)
    if codec != "idle" and stamps_path.is_file() and started and stopped:
        # the recorder's own instants: the episode starts when start() created its aligner (just before that log
        # line) and ends at the stop request's time
        t_start_ns = int(started.group(1)) * 1_000_000_000 + int(started.group(2).ljust(9, "0")[:9])
        result["source_complete_frames"] = source_complete_frames(json.loads(stamps_path.read_text()), t_start_ns,
                                                                  int(stopped.group(1)), fps)
    if codec != "idle":
        result.update(peaks_during_episode=peaks, final_diagnostics={k: final.get(k) for k in (
            "dropped_frames", "alignment", "held_frames", "gaps", "writer_overruns", "last_episode",
            "last_episode_ended_by")})
    if saved:
        result.update(episodes_saved=len(saved), frames_saved=sum(int(g[1]) for g in saved),
                      episode_s=sum(float(g[2]) for g in saved), ended_by=[g[3] for g in saved],
                      dropped_alignment=int(final.get("dropped_frames", 0) or 0),
                      dropped_overrun=int(final.get("writer_overruns", 0) or 0),
                      encode_s=float(saved[-1][5]), encode_tail_s=float(saved[-1][6]), commit_s=float(saved[-1][7]))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="episode length")
    parser.add_argument("--codec", action="append",
                        help="h264, libsvtav1 (PNG frames, encoded at save), stream:h264, stream:libsvtav1 (frames "
                             "spooled to disk, encoded behind by a process per camera) or idle (receive only, no "
                             "episode: the DDS/rclpy baseline); repeatable; default: idle, stream:libsvtav1")
    parser.add_argument("--size", default=f"{W}x{H}", help="camera size WxH (default 640x480)")
    parser.add_argument("--fps", type=int, default=FPS, help="camera rate = dataset fps (default 30)")
    parser.add_argument("--watermark", type=float, help="recorder watermark_delay_s (default: the node's)")
    parser.add_argument("--gap-policy", choices=("split", "hold", "fail"), default="split",
                        help="the recorder's gap_policy (hold: publisher stalls become held frames in one episode)")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of the recorder and the publisher (a camera driver), e.g. -10 on a machine "
                             "other jobs load (also this session's autogroup niceness); the recorder's encoder "
                             "processes run encoder_nice (10) above it")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recorder_bench")
    args = parser.parse_args()
    configure_ros_environment()
    if args.watermark is not None:
        WATERMARK.append(args.watermark)
    NICE[0] = args.nice
    if args.nice < 0:  # with scheduler autogroups niceness only counts inside a session: raise this session's too
        try:
            Path("/proc/self/autogroup").write_text(f"{args.nice}\n")
        except OSError as err:
            print(f"[bench] cannot raise the session's autogroup priority ({err}): other sessions share the CPU "
                  "equally", flush=True)
    GAP_POLICY[0] = args.gap_policy
    diagnostics = Diagnostics()
    width, height = (int(v) for v in args.size.split("x"))
    report = {"what": f"recorder: 3 x {width}x{height} rgb8 @{args.fps} fps + joint_states @100 Hz + action @50 Hz "
                      "over DDS, "
                      f"one {args.seconds:.0f} s episode per codec (recorder and publisher at nice {args.nice}, "
                      f"gap_policy {args.gap_policy})",
              "machine_before": machine(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="wallx_recbench_") as tmp:
        for codec in args.codec or ["idle", "stream:libsvtav1"]:
            print(f"[bench] {codec} ...", flush=True)
            r = run(codec, args.seconds, Path(tmp), diagnostics, (height, width), args.fps)
            print(json.dumps(r), flush=True)
            report["runs"].append(r)  # type: ignore[attr-defined]
            shutil.rmtree(Path(tmp) / f"ds_{codec.replace(':', '_')}", ignore_errors=True)
    report["machine_after"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Recorder benchmark\n\n{report['what']}\n",
             f"Machine: {report['machine_before']['cpu']}, {report['machine_before']['logical_cores']} cores, "
             f"load {report['machine_before']['load_avg_1_5_15']} before / {report['machine_after']['load_avg_1_5_15']}"
             " after (shared machine).\n",
             "| codec | frames saved / frame grid (episodes) | grid frames the publisher sent complete | dropped (gaps "
             "+ overrun) | publisher stalls > 100 ms "
             "| camera msgs received | recorder CPU (cores) | disk write MB/s | encoders behind at most (frames) "
             "/ spool peak MB | encode done after the episode s | commit s | dataset MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:  # type: ignore[attr-defined]
        got = sum(v for k, v in r["received_during_episode"].items() if k in CAMERAS)
        if "frames_saved" in r:  # the frame grid of the episode = saved + dropped
            grid = int(r["frames_saved"]) + int(r["dropped_alignment"]) + int(r["dropped_overrun"])
            saved = f"{r['frames_saved']} / {grid} ({r.get('episodes_saved', 1)})"
            share = 100 * (grid - int(r["frames_saved"])) / grid
            dropped = f"{r['dropped_alignment']} + {r['dropped_overrun']} ({share:.0f} %)"
        else:
            saved, dropped = "-", "-" if r["codec"] == "idle" else f"episode failed: {r['stop'][:90]}"
        holes = ", ".join(f"{k[5:].replace('_fn', '')} {v}" for k, v in r["published"].items() if k.startswith("gaps_"))
        window = float(r.get("received_window_s", r["episode_wall_s"]))  # older results: episode time only
        peaks = r.get("peaks_during_episode", {})
        behind = f"{peaks.get('encoder_backlog_frames', '-')} / {peaks.get('spool_mb', '-')}" if peaks else "-"
        lines.append(f"| {r['codec']} | {saved} | {r.get('source_complete_frames', '-')} | {dropped} | "
                     f"{holes or 'none'} | {got} in {window} s "
                     f"({got / max(1e-9, window) / len(CAMERAS):.1f} Hz per camera) | "
                     f"{r['recorder_cpu_cores']} | {r['disk_write_mb_s']} | {behind} | {r.get('encode_tail_s', '-')} | "
                     f"{r.get('commit_s', '-')} | {r['dataset_mb']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
