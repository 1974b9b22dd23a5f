"""Bench: cameras from a robot host to a policy host over standard ROS 2 (Fast DDS), raw vs JPEG.

    sudo python bench/multi_host_bench.py [--seconds 10] [--out bench/results]

Two hosts on one machine (network namespaces joined by ``test/link_emulator.py``, the same setup as
``test/test_two_hosts.py``). The robot host publishes 3 cameras at 30 Hz (640x480, synthetic
camera-like images) as raw ``sensor_msgs/Image`` or as JPEG ``CompressedImage``; the policy host
receives them with the policy node's QoS (``bench/camera_receiver.py``). Per scenario: bytes per
second on the link (what the wire carried, robot -> policy) and in the messages, frames delivered,
and capture-to-callback latency (the hosts share one clock, so it is exact), with and
without added link delay, and over a WiFi-like link (rate limit + bounded queue). Also the robot-side
JPEG encode and policy-side decode cost per frame. Writes ``multi_host.json`` and ``multi_host.md``
(with the machine: CPU model, cores, load) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))

import ros_harness  # noqa: E402

ros_harness.configure_ros_environment()

from robot_standin import synthetic_frames  # noqa: E402
from two_hosts import (  # noqa: E402
    TwoHosts,
    can_make_namespaces,
    delivered_bytes,
    forwarded_bytes,
    outside_frames,
    wait_for_exit,
)

from wallx_ros.cli.fastdds_profile import DEFAULT_SOCKET_BUFFER_BYTES  # noqa: E402
from wallx_ros.core.image_decoding import decode_compressed  # noqa: E402
from wallx_ros.core.image_encoding import JPEG_FORMAT, encode_jpeg  # noqa: E402

CAMERAS = ["face_view", "left_wrist_view", "right_wrist_view"]
WIDTH, HEIGHT, HZ = 640, 480, 30.0
JPEG_QUALITY = 80
# (name, transport, link impairment); the user-space wire needs a large MTU to carry raw frames
SCENARIOS: list[tuple[str, str, dict[str, float]]] = [
    ("raw, no added delay, OS-default UDP socket buffers (208 kB)", "raw", {"socket_buffer_bytes": 0}),
    ("raw, no added delay", "raw", {}),
    ("raw, 30 ms one-way delay", "raw", {"delay_ms": 30.0}),
    ("jpeg q80, no added delay", "compressed", {}),
    ("jpeg q80, 30 ms one-way delay", "compressed", {"delay_ms": 30.0}),
    ("jpeg q80, WiFi-like: 30 ms, 20 Mbit/s, 100 ms queue", "compressed",
     {"delay_ms": 30.0, "rate_mbit": 20.0, "queue_ms": 100.0}),
    ("raw, WiFi-like: 30 ms, 20 Mbit/s, 100 ms queue", "raw", {"delay_ms": 30.0, "rate_mbit": 20.0, "queue_ms": 100.0}),
]


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "load_avg_1_5_15": list(os.getloadavg()),
            "kernel": platform.release(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def codec_cost(n: int = 30) -> dict[str, float]:
    frames = synthetic_frames(8, HEIGHT, WIDTH, seed=0)
    enc, dec, sizes = [], [], []
    for i in range(n):
        f = frames[i % len(frames)]
        t0 = time.perf_counter()
        data = encode_jpeg(f, JPEG_QUALITY)
        t1 = time.perf_counter()
        decode_compressed(JPEG_FORMAT, data)
        t2 = time.perf_counter()
        enc.append((t1 - t0) * 1e3)
        dec.append((t2 - t1) * 1e3)
        sizes.append(len(data))
    return {"jpeg_encode_ms_p50": float(np.median(enc)), "jpeg_decode_ms_p50": float(np.median(dec)),
            "jpeg_bytes_mean": float(np.mean(sizes)), "raw_bytes": WIDTH * HEIGHT * 3}


def _stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        if wait_for_exit(proc, 15) is None:
            proc.kill()
            proc.wait(10)


def run_scenario(name: str, transport: str, link: dict[str, float], seconds: float, work: Path,
                 domain: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    link = dict(link)
    buffers = int(link.pop("socket_buffer_bytes", DEFAULT_SOCKET_BUFFER_BYTES))
    extra = {"ROS_DOMAIN_ID": str(domain)}
    robot_events, recv_events = work / "robot.jsonl", work / "recv.jsonl"
    robot_cfg = {"cameras": CAMERAS, "width": WIDTH, "height": HEIGHT, "camera_hz": HZ, "transport": transport,
                 "jpeg_quality": JPEG_QUALITY, "joints": [], "events_path": str(robot_events)}
    (work / "robot.json").write_text(json.dumps(robot_cfg))
    (work / "recv.json").write_text(json.dumps({"cameras": CAMERAS, "transport": transport,
                                                "events_path": str(recv_events)}))
    with TwoHosts(work / "net", mtu=65000, socket_buffer_bytes=buffers) as hosts:
        hosts.set_link(**link)
        recv = hosts.policy.popen([sys.executable, str(ROOT / "bench" / "camera_receiver.py"), str(work / "recv.json")],
                                  work / "recv.log", extra)
        robot = hosts.robot.popen([sys.executable, str(ROOT / "test" / "robot_standin.py"), str(work / "robot.json")],
                                  work / "robot.log", extra)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (recv_events.exists() and recv_events.stat().st_size > 0):
                time.sleep(0.2)
            time.sleep(3.0)  # settle after discovery
            t_start = time.time_ns()
            stats0 = hosts.link_stats()
            time.sleep(seconds)
            stats1 = hosts.link_stats()
            t_end = time.time_ns()
            time.sleep(max(1.0, 3 * link.get("delay_ms", 0) / 1000 + link.get("queue_ms", 0) / 1000))
        finally:
            _stop(robot)
            _stop(recv)
    frames = [json.loads(line) for line in recv_events.read_text().splitlines() if line.strip()]
    window = [f for f in frames if t_start <= f["stamp_ns"] < t_end]
    lat = np.array([(f["received_ns"] - f["stamp_ns"]) / 1e6 for f in window if f["ok"]])
    wall_s = (t_end - t_start) / 1e9
    expected = round(wall_s * HZ) * len(CAMERAS)
    summaries = [json.loads(line) for line in robot_events.read_text().splitlines() if '"kind": "published"' in line]

    def published_at(t_ns: int) -> int:
        before = [e for e in summaries if e["wall_ns"] <= t_ns]
        return sum(before[-1]["counts"].get(c, 0) for c in CAMERAS) if before else 0

    published = published_at(t_end) - published_at(t_start)
    link_bytes = forwarded_bytes(stats1, "a_to_b") - forwarded_bytes(stats0, "a_to_b")
    link_delivered = delivered_bytes(stats1, "a_to_b") - delivered_bytes(stats0, "a_to_b")
    payload = float(np.mean([f["bytes"] for f in window])) if window else 0.0
    d0, d1 = stats0["a_to_b"], stats1["a_to_b"]
    return {
        "scenario": name, "transport": transport, "link": link, "udp_socket_buffer_bytes": buffers,
        "window_s": round(wall_s, 2),
        "frames_expected": expected, "frames_published": published, "frames_delivered": len(window),
        "delivered_pct": round(100 * len(window) / expected, 1) if expected else 0.0,
        "payload_mbit_s": round(payload * HZ * len(CAMERAS) * 8 / 1e6, 1) if window else None,
        "link_offered_mbit_s": round(link_bytes * 8 / 1e6 / wall_s, 1),
        "link_delivered_mbit_s": round(link_delivered * 8 / 1e6 / wall_s, 1),
        "link_drops": (d1["queue_drops"] - d0["queue_drops"]) + (d1["lost"] - d0["lost"]),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "latency_ms_max": round(float(lat.max()), 1) if lat.size else None,
        "outside_frames": outside_frames(stats1),
    }


def to_markdown(result: dict[str, Any]) -> str:
    m, c = result["machine"], result["codec"]
    lines = [
        "# Multi-host camera transport: raw vs JPEG, 3 cameras x 640x480 at 30 Hz",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, load average before {m['load_avg_before']}, after "
        f"{m['load_avg_1_5_15']} (shared machine); kernel {m['kernel']}, Python {m['python']}; {m['date']}.",
        "Two hosts = two network namespaces joined by test/link_emulator.py (user-space wire, MTU 65000); "
        "ROS 2 Kilted, Fast DDS UDPv4 (profile from wallx-ros-fastdds-profile: no shared memory, 4 MB UDP socket "
        "buffers unless said otherwise), "
        "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST + ROS_STATIC_PEERS. Latency = camera stamp -> message in the "
        "policy host's subscription callback (one shared clock; decode cost below comes on top). `link` = bytes "
        "the wire carried robot -> policy; `payload` = the messages' data.",
        "",
        f"JPEG q{JPEG_QUALITY}: {c['jpeg_bytes_mean'] / 1e3:.0f} kB per frame vs {c['raw_bytes'] / 1e3:.0f} kB raw; "
        f"encode {c['jpeg_encode_ms_p50']:.1f} ms, decode {c['jpeg_decode_ms_p50']:.1f} ms per frame (p50, this "
        "machine).",
        "",
        "| scenario | payload Mbit/s at 30 Hz | link Mbit/s offered / delivered | frames published / delivered "
        "(of expected) | latency p50 / p95 / max ms | link drops |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["scenarios"]:
        lat = ("n/a" if r["latency_ms_p50"] is None
               else f"{r['latency_ms_p50']} / {r['latency_ms_p95']} / {r['latency_ms_max']}")
        lines.append(f"| {r['scenario']} | {r['payload_mbit_s']} | {r['link_offered_mbit_s']} / "
                     f"{r['link_delivered_mbit_s']} | "
                     f"{r['frames_published']} / {r['frames_delivered']} of {r['frames_expected']} "
                     f"({r['delivered_pct']} %) | {lat} | "
                     f"{r['link_drops']} |")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    reason = can_make_namespaces()
    if reason:
        print(f"multi_host_bench: cannot run: {reason}", file=sys.stderr)
        return 2
    load_before = list(os.getloadavg())
    codec = codec_cost()
    work = Path(f"/tmp/wallx_multi_host_bench_{os.getpid()}")
    results = []
    for i, (name, transport, link) in enumerate(SCENARIOS):
        if args.only and args.only not in name:
            continue
        print(f"[bench] {name} ...", flush=True)
        res = run_scenario(name, transport, link, args.seconds, work / f"s{i}", domain=60 + i)
        print(f"[bench]   {json.dumps(res)}", flush=True)
        results.append(res)
    machine = machine_info()
    machine["load_avg_before"] = load_before
    result = {"machine": machine, "codec": codec, "cameras": len(CAMERAS), "width": WIDTH, "height": HEIGHT, "hz": HZ,
              "scenarios": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "multi_host.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "multi_host.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
