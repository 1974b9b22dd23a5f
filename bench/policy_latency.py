"""Policy node latency benchmark: what the node adds to the model, and control-stream jitter.

    python bench/policy_latency.py [--checkpoint DIR] [--chunks 40] [--seconds 60] [--out bench/results]
                                   [--label NAME] [--lockstep-only] [--camera-publish message|serialized]
                                   [--camera-transport raw|compressed]

Two runs of the real node (subprocess, real DDS on loopback, tiny WallX checkpoint on CPU, 1 torch thread),
fed 3 cameras of 640x480 rgb8 + joint states:

1. **overhead (lock-step)**: the bench publishes one synchronised set (3 frames + joint state, one stamp),
   waits for the JointTrajectory, repeats. overhead = (trajectory received - camera stamp) - model time,
   where model time is the worker's whole ``predict_chunk`` (LeRobot pre/post-processors + WallX). Also
   reported from the node's own clock (``~/status``: publish time - camera stamp - model time).
2. **free-running + jitter**: cameras at 30 Hz, joint states at 100 Hz, ``output_mode joint_state`` at
   ``control_rate_hz 100`` while the model runs back to back. Jitter = |interval - 10 ms| between
   consecutive stream messages, from the node's publish stamps and from the bench's receive times. The
   free-running overhead is reported with ``input_age`` (how old the newest complete frame set was when
   the worker became free: up to one camera period, a property of latest-observation-wins, not of the node).

Targets (issue 3): overhead p50 < 3 ms, p99 < 10 ms; jitter p99 < 2 ms. Results go to
bench/results/policy_latency_<date>[_<label>].{json,md} with the machine's CPU, cores, load and versions.

``--camera-publish serialized`` publishes each camera frame as pre-serialized bytes (only the stamp rewritten),
as a C++ camera driver would; the default builds a Python ``Image`` per frame, whose construction and
serialisation (~1 ms per 640x480 frame) then count in the node's overhead. To compare two versions of the
node in one session, run this script from each checkout (``cd CHECKOUT && PYTHONPATH=. python
bench/policy_latency.py --label NAME``): the node runs from the checkout the script is in.

``--camera-transport compressed`` publishes ``sensor_msgs/CompressedImage`` (JPEG, quality 90, encoded once per
camera; the node runs with ``camera_transport: compressed``) on ``<camera>/image_raw/compressed``. The frames are
then a smooth synthetic scene (gradients and blocks, ~40-60 KB as JPEG, like a camera's), not the raw run's noise,
which JPEG cannot compress.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "test")]  # this checkout's wallx_ros and test harness
from ros_harness import NodeProcess, RosTestNode, configure_ros_environment, wait_until  # noqa: E402

configure_ros_environment()

NODE = "/wallx_policy"
CAMERAS = ("face_view", "left_wrist_view", "right_wrist_view")


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cv2
    import torch

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "not a git checkout"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    from wallx_ros.lerobot import versions

    return {"cpu": cpu, "cores": os.cpu_count(), "loadavg_start": os.getloadavg(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "lerobot": ".".join(map(str, versions.lerobot_version())), "ros_distro": os.environ.get(
                "ROS_DISTRO") or _ros_distro(), "node_code": str(REPO), "git_commit": commit,
            "platform": platform.platform(), "date": dt.datetime.now().isoformat()}


def _ros_distro() -> str:
    from importlib import metadata

    for distro in ("kilted", "jazzy", "humble", "rolling"):
        try:
            metadata.version(f"ros-{distro}-rclpy")
            return distro
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99),
            "max": float(max(values)) if values else float("nan")}


class Inputs:
    """3 cameras (640x480 rgb8) and joint states; publish one stamped set, or free-run at 30/100 Hz."""

    def __init__(self, ros: RosTestNode, joints: tuple[str, ...], camera_publish: str = "message",
                 transport: str = "raw") -> None:
        from rclpy.qos import qos_profile_sensor_data
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import CompressedImage, Image, JointState

        self.ros, self.joints = ros, joints
        rng = np.random.default_rng(0)
        self.transport = transport
        self.frames = {cam: rng.integers(0, 256, (480, 640, 3), dtype=np.uint8).tobytes() for cam in CAMERAS}
        self.jpeg = {cam: _jpeg(_scene(i)) for i, cam in enumerate(CAMERAS)} if transport == "compressed" else {}
        if transport == "compressed":
            self.serialized = {cam: serialize_message(CompressedImage(format="jpeg", data=self.jpeg[cam]))
                               for cam in CAMERAS} if camera_publish == "serialized" else None
            self.cam_pubs = {cam: ros.publisher(CompressedImage, f"/{cam}/image_raw/compressed",
                                                qos_profile_sensor_data) for cam in CAMERAS}
        else:
            self.serialized = {cam: serialize_message(Image(height=480, width=640, encoding="rgb8", step=640 * 3,
                                                            data=self.frames[cam])) for cam in CAMERAS} \
                if camera_publish == "serialized" else None
            self.cam_pubs = {cam: ros.publisher(Image, f"/{cam}/image_raw", qos_profile_sensor_data)
                             for cam in CAMERAS}
        self._CompressedImage = CompressedImage
        self.joint_pub = ros.publisher(JointState, "/joint_states", 10)
        self._Image, self._JointState = Image, JointState
        self._stop = threading.Event()

    def wait_connected(self) -> None:
        for pub in (*self.cam_pubs.values(), self.joint_pub):
            assert self.ros.wait_for_subscribers(pub, timeout_s=180), "the node never subscribed"

    def _stamp(self, ns: int) -> Any:
        from builtin_interfaces.msg import Time

        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def publish_cameras(self, ns: int) -> None:
        if self.serialized is not None:  # CDR: 4-byte encapsulation, then stamp sec (int32), nanosec (uint32)
            stamp = struct.pack("<iI", ns // 1_000_000_000, ns % 1_000_000_000)
            for cam, pub in self.cam_pubs.items():
                buf = self.serialized[cam]
                pub.publish(buf[:4] + stamp + buf[12:])
            return
        for cam, pub in self.cam_pubs.items():
            if self.transport == "compressed":
                msg = self._CompressedImage(format="jpeg", data=self.jpeg[cam])
            else:
                msg = self._Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=self.frames[cam])
            msg.header.stamp = self._stamp(ns)
            pub.publish(msg)

    def publish_joints(self, ns: int) -> None:
        msg = self._JointState(name=list(self.joints), position=[0.01 * i for i in range(len(self.joints))])
        msg.header.stamp = self._stamp(ns)
        self.joint_pub.publish(msg)

    def free_run(self) -> threading.Thread:
        def loop() -> None:
            next_cam = next_joint = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_joint:
                    self.publish_joints(self.ros.now_ns())
                    next_joint += 0.01
                if now >= next_cam:
                    self.publish_cameras(self.ros.now_ns())
                    next_cam += 1 / 30
                self._stop.wait(max(0.0, min(next_cam, next_joint) - time.monotonic()))

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def _scene(seed: int) -> np.ndarray:
    """A smooth 640x480 RGB scene (gradients, a few blocks, mild noise): compresses like a camera image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    img = np.stack([x / 640 * 200, y / 480 * 180, (x + y) / 1120 * 160], axis=-1) + 30
    for _ in range(6):
        x0, y0 = int(rng.integers(0, 560)), int(rng.integers(0, 400))
        img[y0:y0 + int(rng.integers(30, 80)), x0:x0 + int(rng.integers(30, 80))] = rng.integers(0, 256, 3)
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def renice(pid: int, nice: int) -> None:
    """Give a process and all its threads the niceness ``nice`` (threads created later inherit it)."""
    if not nice:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except (PermissionError, ProcessLookupError) as err:
            print(f"  renice {task.name}: {err}", flush=True)


def status_values(msg: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in msg.values}


def run_lockstep(ros: RosTestNode, checkpoint: Path, joints: tuple[str, ...], chunks: int, log_dir: Path,
                 nice: int = 0, camera_publish: str = "message", transport: str = "raw") -> dict:
    from diagnostic_msgs.msg import DiagnosticStatus
    from trajectory_msgs.msg import JointTrajectory

    received: dict[int, int] = {}
    statuses: dict[str, dict[str, str]] = {}
    lock = threading.Lock()

    def on_traj(msg: Any) -> None:
        with lock:
            received[len(received)] = ros.now_ns()

    def on_status(msg: Any) -> None:
        values = status_values(msg)
        with lock:
            statuses.setdefault(values["observation_stamp"], values)

    ros.node.create_subscription(JointTrajectory, f"{NODE}/joint_trajectory", on_traj, 10)
    ros.node.create_subscription(DiagnosticStatus, f"{NODE}/status", on_status, 50)
    params = {"checkpoint_dir": str(checkpoint), "allow_random_weights": True, "num_threads": 1, "warmup": True,
              "instruction": "pick up the cube", "latency_compensation": False, "execution_horizon": 1,
              "ghost_rate_hz": 0.0, "max_age_s": 60.0,  # lock-step: inputs are not refreshed while the model runs
              "camera_transport": transport}
    proc = NodeProcess("wallx_ros.nodes.policy_node", "wallx_policy", params, log_dir)
    renice(proc.proc.pid, nice)
    inputs = Inputs(ros, joints, camera_publish, transport)
    rows = []
    try:
        inputs.wait_connected()
        assert ros.wait_for_publishers(f"{NODE}/joint_trajectory", timeout_s=180)
        time.sleep(1.0)
        for i in range(chunks + 2):  # the first two are discarded (DDS warm-up)
            with lock:
                before = len(received)
            stamp = ros.now_ns()
            inputs.publish_joints(stamp)
            inputs.publish_cameras(stamp)
            key = f"{stamp / 1e9:.9f}"
            if not wait_until(lambda: len(received) > before and key in statuses, 60, 0.001):  # noqa: B023
                print(f"  set {i}: no trajectory (status {statuses.get(key)})", flush=True)
                continue
            with lock:
                got, st = received[before], statuses[key]
            if i >= 2:
                model = float(st["model_ms"])
                rows.append({"bench_overhead_ms": (got - stamp) / 1e6 - model,
                             "node_overhead_ms": float(st["overhead_ms"]),
                             "model_ms": model, **{k: float(st[k]) for k in
                                                   ("input_age_ms", "decode_ms", "handoff_ms", "publish_ms",
                                                    "postprocess_ms", "preprocess_ms", "inference_ms",
                                                    "transport_delay_ms")}})
                r = rows[-1]
                print(f"  chunk {i - 1}/{chunks}: overhead bench {r['bench_overhead_ms']:.2f} ms, node "
                      f"{r['node_overhead_ms']:.2f} ms (input age {r['input_age_ms']:.2f}, "
                      f"decode {r['decode_ms']:.2f}, handoff {r['handoff_ms']:.2f}, publish {r['publish_ms']:.2f}), "
                      f"model {model:.0f} ms", flush=True)
            time.sleep(0.05)
    finally:
        proc.stop()
    path = next((line.split("images via ", 1)[1].split(")", 1)[0] for line in proc.output().splitlines()
                 if "images via " in line), "unknown")
    keys = rows[0].keys() if rows else []
    sizes = {cam: len(b) for cam, b in inputs.jpeg.items()}
    return {"chunks": len(rows), "camera_publish": camera_publish, "camera_transport": transport,
            "jpeg_bytes": sizes, "image_path": path,
            **{k: summary([r[k] for r in rows]) for k in keys}}


def run_freerun(ros: RosTestNode, checkpoint: Path, joints: tuple[str, ...], seconds: float, log_dir: Path,
                nice: int = 0, stream_priority: int = 0) -> dict:
    from diagnostic_msgs.msg import DiagnosticStatus
    from sensor_msgs.msg import JointState

    stream: list[tuple[int, int]] = []
    statuses: dict[str, dict[str, str]] = {}
    lock = threading.Lock()
    recording = threading.Event()

    def on_stream(msg: Any) -> None:
        if recording.is_set():
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            with lock:
                stream.append((stamp, time.monotonic_ns()))

    def on_status(msg: Any) -> None:
        values = status_values(msg)
        if recording.is_set():
            with lock:
                statuses.setdefault(values["observation_stamp"], values)

    ros.node.create_subscription(JointState, f"{NODE}/joint_commands", on_stream, 100)
    ros.node.create_subscription(DiagnosticStatus, f"{NODE}/status", on_status, 50)
    params = {"checkpoint_dir": str(checkpoint), "allow_random_weights": True, "num_threads": 1, "warmup": True,
              "instruction": "pick up the cube", "latency_compensation": False, "output_mode": "joint_state",
              "control_rate_hz": 100.0, "execution_horizon": 1, "ghost_rate_hz": 0.0,
              "stream_priority": stream_priority}
    proc = NodeProcess("wallx_ros.nodes.policy_node", "wallx_policy", params, log_dir)
    renice(proc.proc.pid, nice)
    inputs = Inputs(ros, joints)
    try:
        inputs.wait_connected()
        inputs.free_run()
        assert wait_until(lambda: ros.node.count_publishers(f"{NODE}/joint_commands") > 0, 180)
        time.sleep(5.0)  # first chunks, DDS warm-up
        recording.set()
        time.sleep(seconds)
        recording.clear()
    finally:
        inputs.stop()
        proc.stop()
    with lock:
        pub_ns = np.array([s for s, _ in stream], dtype=np.int64)
        recv_ns = np.array([r for _, r in stream], dtype=np.int64)
        chunk_rows = [s for k, s in statuses.items() if float(k) > 0]
    pub_jitter = np.abs(np.diff(pub_ns) / 1e6 - 10.0).tolist() if len(pub_ns) > 1 else []
    recv_jitter = np.abs(np.diff(recv_ns) / 1e6 - 10.0).tolist() if len(recv_ns) > 1 else []
    return {
        "seconds": seconds, "stream_messages": len(pub_ns), "stream_priority": stream_priority,
        "stream_rate_hz": len(pub_ns) / seconds,
        "jitter_publish_ms": summary(pub_jitter), "jitter_receive_ms": summary(recv_jitter),
        "chunks_during_window": len(chunk_rows),
        **{k: summary([float(s[k]) for s in chunk_rows]) for k in
           ("overhead_ms", "input_age_ms", "model_ms", "decode_ms", "handoff_ms", "publish_ms")},
        "overhead_minus_input_age_ms": summary([float(s["overhead_ms"]) - float(s["input_age_ms"])
                                                for s in chunk_rows]),
    }


def to_markdown(result: dict) -> str:
    m, lock, free = result["machine"], result["lockstep"], result.get("freerun")

    def row(name: str, s: dict, target: str = "") -> str:
        return f"| {name} | {s['n']} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} | {s['max']:.2f} | {target} |"

    lines = [
        f"# Policy node latency ({m['date'][:16]}{', ' + result['label'] if result.get('label') else ''})", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, load average {m['loadavg_start'][0]:.1f} at start / "
        f"{m['loadavg_end'][0]:.1f} at end (shared machine; other jobs were running), Python {m['python']}, "
        f"torch {m['torch']}, numpy {m.get('numpy', '?')}, OpenCV {m.get('opencv', '?')}, LeRobot "
        f"{m.get('lerobot', '?')}, ROS {m.get('ros_distro', '?')}; node code {m.get('node_code', '?')} "
        f"({m.get('git_commit', '?')}). Tiny WallX checkpoint on CPU, 1 torch thread; 3 x 640x480 cameras "
        + (f"as CompressedImage JPEG ({', '.join(f'{b // 1024} KB' for b in lock['jpeg_bytes'].values())})"
           if lock.get("camera_transport") == "compressed" else "rgb8")
        + f" published as {lock.get('camera_publish', 'message')}s, node images via {lock.get('image_path', '?')}.",
        "",
        "| measure (ms) | n | p50 | p90 | p99 | max | target |", "|---|---|---|---|---|---|---|",
        row("overhead, lock-step, bench clock (received - camera stamp - model)", lock["bench_overhead_ms"],
            "p50 < 3, p99 < 10"),
        row("overhead, lock-step, node clock (published - camera stamp - model)", lock["node_overhead_ms"]),
        row("  of which input age at hand-off to the worker", lock["input_age_ms"]),
        row("  of which transport (slowest stream: received - stamp)", lock["transport_delay_ms"]),
        row("  of which decode + resize (slowest camera)", lock["decode_ms"]),
        row("  of which worker -> executor hand-off", lock["handoff_ms"]),
        row("  of which message build + publish", lock["publish_ms"]),
        row("model time (predict_chunk)", lock["model_ms"]),
    ]
    if free is None:
        return "\n".join(lines) + f"\n\nLock-step only (no free-running run); niceness {result['nice']}.\n"
    lines += [
        row("jitter at 100 Hz while the model runs, node publish stamps", free["jitter_publish_ms"], "p99 < 2"),
        row("jitter at 100 Hz, bench receive times (adds DDS + bench scheduling)", free["jitter_receive_ms"]),
        row("free-running overhead (30 Hz cameras)", free["overhead_ms"]),
        row("  minus input age (frame waiting for the busy worker)", free["overhead_minus_input_age_ms"]),
        "",
        f"Free-running: {free['stream_rate_hz']:.1f} Hz stream, {free['chunks_during_window']} chunks in "
        f"{free['seconds']:.0f} s (the model ran back to back), stream thread priority "
        f"{free['stream_priority'] or 'normal'}; node and bench niceness {result['nice']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="policy folder (default: build the tiny one)")
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness for the node and the bench (e.g. -10: their CPU share on a busy machine)")
    parser.add_argument("--stream-priority", type=int, default=0, help="the node's stream_priority (SCHED_FIFO)")
    parser.add_argument("--label", default="", help="added to the results file name and title (e.g. before, after)")
    parser.add_argument("--lockstep-only", action="store_true", help="skip the free-running / jitter run")
    parser.add_argument("--camera-publish", choices=("message", "serialized"), default="message",
                        help="how the bench publishes camera frames (see above)")
    parser.add_argument("--camera-transport", choices=("raw", "compressed"), default="raw",
                        help="raw: sensor_msgs/Image rgb8; compressed: CompressedImage JPEG (see above)")
    args = parser.parse_args()
    import rclpy

    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="wallx_bench_"))
    checkpoint = args.checkpoint
    if checkpoint is None:
        from wallx_ros.policy.checkpoints.tiny_checkpoint import build_tiny_checkpoint

        checkpoint = build_tiny_checkpoint(work / "tiny")
    from wallx_ros.core.robot_mapping import RobotMapping

    joints = RobotMapping.load(checkpoint).state_names
    renice(os.getpid(), args.nice)
    rclpy.init()
    ros = RosTestNode("wallx_bench")
    try:
        print("lock-step overhead run", flush=True)
        lock = run_lockstep(ros, checkpoint, joints, args.chunks, work / "logs_lockstep", args.nice,
                            args.camera_publish, args.camera_transport)
        free = None
        if not args.lockstep_only:
            print("free-running / jitter run", flush=True)
            free = run_freerun(ros, checkpoint, joints, args.seconds, work / "logs_freerun", args.nice,
                               args.stream_priority)
    finally:
        ros.close()
        rclpy.shutdown()
    info["loadavg_end"] = os.getloadavg()
    result = {"machine": info, "label": args.label, "nice": args.nice, "lockstep": lock, "freerun": free}
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"_nice{args.nice}_prio{args.stream_priority}" if args.nice or args.stream_priority else ""
    tag += f"_{args.label}" if args.label else ""
    name = f"policy_latency_{dt.datetime.now():%Y%m%d_%H%M}{tag}"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    print(f"wrote {args.out / name}.json/.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
