"""Two "hosts" on one machine: network namespaces joined by a user-space wire (``link_emulator.py``).

``TwoHosts`` creates a robot namespace and a policy namespace, each with only ``lo`` and one TAP
interface ``eth0`` (IPv6 off, a default route into the wire so that any attempt to reach another
address produces a frame the wire counts and drops). Processes run inside with ``ip netns exec``.
Names carry the pid and a random tag, so parallel runs never collide; ``close()`` (and the context
manager) removes everything, and namespaces left by a killed run of a dead pid are swept at start.

``can_make_namespaces()`` says why not where it cannot work (not root, no ``ip``, no /dev/net/tun).

Each host gets a Fast DDS profile (``wallx_ros.cli.fastdds_profile``) and the ROS 2 environment of a
two-host deployment: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` + ``ROS_STATIC_PEERS=<other host>``,
UDPv4 bound to the host's own address, no shared memory (both namespaces share /dev/shm, so
shared memory would carry the data past the wire).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ros_harness import REPO_ROOT, subprocess_env

from wallx_ros.cli import fastdds_profile
from wallx_ros.cli.fastdds_profile import DEFAULT_SOCKET_BUFFER_BYTES, two_host_profile

LINK_EMULATOR = Path(__file__).resolve().parent / "link_emulator.py"
_NAME_RE = re.compile(r"^wallx-(?:robot|policy)-(\d+)-[0-9a-f]+$")


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


def can_make_namespaces() -> str:
    """Empty string if this machine can run TwoHosts, else the reason why not."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2 (the ip command) is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no TUN/TAP support in this kernel or container)"
    probe = f"wallx-probe-{os.getpid()}-{secrets.token_hex(3)}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return ""


def sweep_stale_namespaces() -> list[str]:
    """Delete wallx test namespaces whose creating process no longer exists."""
    listing = _run("ip", "netns", "list", check=False).stdout
    removed = []
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME_RE.match(name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    return removed


@dataclass(frozen=True)
class Host:
    name: str  # namespace
    ip: str
    peer_ip: str
    profile: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a ROS process on this host (two-host deployment settings)."""
        env = subprocess_env(extra)
        env.update({
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "ROS_STATIC_PEERS": self.peer_ip,
            fastdds_profile.profile_variable(): str(self.profile),
        })
        env.update(extra or {})
        return env

    def command(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def popen(self, args: list[str], log_path: Path, extra_env: dict[str, str] | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(log_path, "wb")  # noqa: SIM115 - owned by the process object below
        proc = subprocess.Popen(self.command(args), stdout=log, stderr=subprocess.STDOUT,
                                env=env if env is not None else self.env(extra_env), cwd=str(REPO_ROOT))
        log.close()  # the child holds its own descriptor
        return proc

    def interface_counters(self) -> dict[str, dict[str, int]]:
        """Kernel counters of every interface in this namespace: {ifname: {tx_packets, rx_packets, ...}}."""
        out = _run("ip", "-n", self.name, "-s", "-j", "link", "show").stdout
        counters = {}
        for link in json.loads(out):
            stats = link.get("stats64") or link.get("stats") or {}
            counters[link["ifname"]] = {
                "tx_packets": int(stats.get("tx", {}).get("packets", 0)),
                "tx_bytes": int(stats.get("tx", {}).get("bytes", 0)),
                "rx_packets": int(stats.get("rx", {}).get("packets", 0)),
                "rx_bytes": int(stats.get("rx", {}).get("bytes", 0)),
            }
        return counters


class TwoHosts:
    """Robot host and policy host joined by an emulated link. Use as a context manager."""

    def __init__(self, work_dir: Path, subnet: str = "10.213.7", mtu: int = 1500,
                 shared_memory: bool = False, loopback: bool = True,
                 socket_buffer_bytes: int = DEFAULT_SOCKET_BUFFER_BYTES) -> None:
        self.work_dir = work_dir
        self.mtu = mtu
        tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        work_dir.mkdir(parents=True, exist_ok=True)
        robot_ip, policy_ip = f"{subnet}.1", f"{subnet}.2"
        self.robot = Host(f"wallx-robot-{tag}", robot_ip, policy_ip, work_dir / "fastdds_robot.xml")
        self.policy = Host(f"wallx-policy-{tag}", policy_ip, robot_ip, work_dir / "fastdds_policy.xml")
        for host in (self.robot, self.policy):
            host.profile.write_text(two_host_profile(host.ip, shared_memory=shared_memory, loopback=loopback,
                                                     socket_buffer_bytes=socket_buffer_bytes))
        self._wire: subprocess.Popen[str] | None = None
        self._created: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> TwoHosts:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        sweep_stale_namespaces()
        for host in (self.robot, self.policy):
            _run("ip", "netns", "add", host.name)
            self._created.append(host.name)
            _run("ip", "-n", host.name, "link", "set", "lo", "up")
            for key in ("all", "default"):  # no IPv6 at all: no router solicitations, no MLD reports
                _run("ip", "netns", "exec", host.name, "sh", "-c",
                     f"echo 1 > /proc/sys/net/ipv6/conf/{key}/disable_ipv6")
        self._wire = subprocess.Popen(
            [sys.executable, str(LINK_EMULATOR), "--ns-a", self.robot.name, "--ns-b", self.policy.name,
             "--mtu", str(self.mtu), "--allowed", f"{self.robot.ip},{self.policy.ip}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        ready = self._read_reply(timeout_s=10)
        if not ready.get("ready"):
            raise RuntimeError(f"link emulator did not start: {ready}")
        for host in (self.robot, self.policy):
            _run("ip", "-n", host.name, "link", "set", "eth0", "mtu", str(self.mtu), "up")
            _run("ip", "-n", host.name, "addr", "add", f"{host.ip}/24", "dev", "eth0")
            # any destination is routable into the wire: an attempt to reach another address is a
            # frame the wire sees (and counts as outside), not a silent ENETUNREACH in the kernel
            _run("ip", "-n", host.name, "route", "add", "default", "dev", "eth0")
            links = [ln["ifname"] for ln in json.loads(_run("ip", "-n", host.name, "-j", "link", "show").stdout)]
            if sorted(links) != ["eth0", "lo"]:
                raise RuntimeError(f"namespace {host.name} has interfaces {links}, expected only lo and eth0")

    def close(self) -> None:
        if self._wire is not None:
            if self._wire.poll() is None:
                try:
                    assert self._wire.stdin is not None
                    self._wire.stdin.write('{"cmd": "quit"}\n')
                    self._wire.stdin.flush()
                    self._wire.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    self._wire.kill()
                    self._wire.wait(5)
            self._wire = None
        for name in self._created:
            _run("ip", "netns", "del", name, check=False)
        self._created.clear()

    # -- the link ----------------------------------------------------------------------------------------
    def _read_reply(self, timeout_s: float = 10.0) -> dict[str, Any]:
        assert self._wire is not None and self._wire.stdout is not None
        import select

        ready, _, _ = select.select([self._wire.stdout], [], [], timeout_s)
        if not ready:
            raise RuntimeError("link emulator did not answer")
        line = self._wire.stdout.readline()
        if not line:
            err = self._wire.stderr.read() if self._wire.stderr else ""
            raise RuntimeError(f"link emulator exited: {err}")
        return dict(json.loads(line))

    def _command(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._wire is not None and self._wire.stdin is not None
        self._wire.stdin.write(json.dumps(msg) + "\n")
        self._wire.stdin.flush()
        return self._read_reply()

    def set_link(self, delay_ms: float = 0.0, rate_mbit: float = 0.0, queue_ms: float = 200.0,
                 loss: float = 0.0, cut: bool = False) -> dict[str, Any]:
        """Impair the link (both directions): netem's delay/rate/limit/loss, plus a full cut."""
        return self._command({"cmd": "set", "delay_ms": delay_ms, "rate_mbit": rate_mbit, "queue_ms": queue_ms,
                              "loss": loss, "cut": cut})

    def link_stats(self) -> dict[str, Any]:
        """Frames and bytes per destination and direction, frames to other addresses, drops."""
        return self._command({"cmd": "stats"})


def outside_frames(stats: dict[str, Any]) -> dict[str, int]:
    """{direction:destination: frames} of every frame addressed outside the two hosts."""
    out = {}
    for direction in ("a_to_b", "b_to_a"):
        for dst, (frames, _bytes) in stats[direction]["outside"].items():
            out[f"{direction}:{dst}"] = frames
    return out


def forwarded_bytes(stats: dict[str, Any], direction: str) -> int:
    """Bytes of the frames the hosts sent into the link in ``direction`` (before any impairment)."""
    return sum(b for _f, b in stats[direction]["forwarded"].values())


def delivered_bytes(stats: dict[str, Any], direction: str) -> int:
    """Bytes the link delivered to the other host in ``direction`` (after delay, rate limit, drops)."""
    return int(stats[direction]["delivered"][1])


def wait_for_exit(proc: subprocess.Popen[Any], timeout_s: float) -> int | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.05)
    return proc.poll()
