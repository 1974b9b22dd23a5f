"""A user-space Ethernet wire between two network namespaces, with netem-like impairments.

Run as root: ``python link_emulator.py --ns-a NS_A --ns-b NS_B --allowed 10.1.0.1,10.1.0.2``.
It creates one TAP interface in each namespace (``--ifname``, default ``eth0``) and forwards every
Ethernet frame from one to the other, so the two namespaces behave like two hosts on one cable.

Why not a veth pair + ``tc qdisc ... netem``: kernels built without ``CONFIG_NET_SCH_NETEM`` (this
project's CI machines among them) cannot add delay with tc at all. Doing the wire in user space
gives the same knobs everywhere, and lets the wire count every frame by destination:

* ``delay_ms``: one-way propagation delay added to every frame (both directions);
* ``rate_mbit``: link rate; frames queue behind each other (serialisation delay) like on a real link;
* ``queue_ms``: a frame that would wait longer than this in the queue is dropped (tail drop), like a
  WiFi/tbf queue of limited size — this is where a saturated link loses frames;
* ``loss``: random loss probability per frame; ``cut``: drop everything (a link outage).

Every frame is classified by destination: IPv4 to one of ``--allowed`` and ARP between allowed
addresses are forwarded; ANY other frame (another IPv4 address, multicast, broadcast IP, IPv6, other
protocols) is counted under ``outside`` and dropped. The two hosts get a default route into the
wire, so an attempt to reach any other address really produces a frame here and is counted.

Control: one JSON object per line on stdin — ``{"cmd": "set", "delay_ms": 30, "rate_mbit": 20}``,
``{"cmd": "stats"}`` (answers one JSON line on stdout), ``{"cmd": "quit"}``. The first stdout line is
``{"ready": true}`` once both TAP interfaces exist. Standard library only (runs without the venv).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import math
import os
import random
import select
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806


def enter_netns(name: str) -> None:
    """Move this (single-threaded) process into network namespace ``name`` (``ip netns`` naming)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tap(ifname: str) -> int:
    """Create a TAP interface in the current network namespace; it lives as long as the fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def classify(frame: bytes, allowed: frozenset[bytes], ports: bool = False) -> tuple[bool, str]:
    """(forward?, destination label) of one Ethernet frame; ``ports``: label UDP datagrams by ports too."""
    if len(frame) < 14:
        return False, "runt"
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x8100 and len(frame) >= 18:  # VLAN tag: look behind it
        ethertype = struct.unpack_from("!H", frame, 16)[0]
        frame = frame[:12] + frame[16:]
    if ethertype == ETH_P_IP and len(frame) >= 34:
        dst = frame[30:34]
        label = socket.inet_ntoa(dst)
        if ports and frame[23] == 17 and (struct.unpack_from("!H", frame, 20)[0] & 0x1FFF) == 0:
            ihl = 14 + (frame[14] & 0x0F) * 4
            dport, sport, ulen = (struct.unpack_from("!H", frame, ihl + k)[0] for k in (2, 0, 4))
            label += f":{dport}<-{socket.inet_ntoa(frame[26:30])}:{sport} len{ulen}"
        return dst in allowed, label
    if ethertype == ETH_P_ARP and len(frame) >= 42:
        sender, target = frame[28:32], frame[38:42]
        ok = sender in allowed and target in allowed
        return ok, f"arp:{socket.inet_ntoa(target)}"
    return False, f"ethertype:0x{ethertype:04x}"


@dataclass
class Direction:
    """One direction of the wire: its queue and counters."""

    name: str
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    free_at: float = 0.0
    forwarded: dict[str, list[int]] = field(default_factory=dict)
    outside: dict[str, list[int]] = field(default_factory=dict)
    queue_drops: int = 0
    lost: int = 0
    cut_drops: int = 0
    max_queue_ms: float = 0.0
    delivered: list[int] = field(default_factory=lambda: [0, 0])  # frames, bytes written to the other side

    @staticmethod
    def _count(table: dict[str, list[int]], key: str, size: int) -> None:
        entry = table.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += size

    def stats(self) -> dict[str, object]:
        return {"forwarded": self.forwarded, "outside": self.outside, "queue_drops": self.queue_drops,
                "lost": self.lost, "cut_drops": self.cut_drops, "max_queue_ms": round(self.max_queue_ms, 3),
                "delivered": self.delivered,
                "queued": len(self.queue)}


@dataclass
class Impairment:
    delay_ms: float = 0.0
    rate_mbit: float = 0.0  # 0 = unlimited
    queue_ms: float = 200.0
    loss: float = 0.0
    cut: bool = False


class Wire:
    def __init__(self, fd_a: int, fd_b: int, allowed: frozenset[bytes], mtu: int, label_ports: bool = False) -> None:
        self.label_ports = label_ports
        self.fds = (fd_a, fd_b)
        self.allowed = allowed
        self.bufsize = mtu + 64
        self.dirs = (Direction("a_to_b"), Direction("b_to_a"))
        self.imp = Impairment()
        self.rng = random.Random(0)
        self.started = time.monotonic()

    def receive(self, side: int, now: float) -> None:
        d = self.dirs[side]
        while True:
            try:
                frame = os.read(self.fds[side], self.bufsize)
            except BlockingIOError:
                return
            if not frame:
                return
            ok, label = classify(frame, self.allowed, self.label_ports)
            if not ok:
                d._count(d.outside, label, len(frame))
                continue
            d._count(d.forwarded, label, len(frame))
            imp = self.imp
            if imp.cut:
                d.cut_drops += 1
                continue
            if imp.loss > 0 and self.rng.random() < imp.loss:
                d.lost += 1
                continue
            if imp.rate_mbit > 0:
                start = max(now, d.free_at)
                wait = start - now
                if wait * 1000.0 > imp.queue_ms:
                    d.queue_drops += 1
                    continue
                d.max_queue_ms = max(d.max_queue_ms, wait * 1000.0)
                d.free_at = start + len(frame) * 8 / (imp.rate_mbit * 1e6)
                due = d.free_at + imp.delay_ms / 1000.0
            else:
                due = now + imp.delay_ms / 1000.0
            if d.queue and due < d.queue[-1][0]:
                due = d.queue[-1][0]  # a lowered delay never reorders frames
            d.queue.append((due, frame))

    def deliver(self, now: float) -> float | None:
        """Write every due frame; return seconds until the next one is due (None: nothing queued)."""
        nxt: float | None = None
        for side, d in enumerate(self.dirs):
            out = self.fds[1 - side]
            while d.queue and d.queue[0][0] <= now:
                _, frame = d.queue.popleft()
                try:
                    os.write(out, frame)
                    d.delivered[0] += 1
                    d.delivered[1] += len(frame)
                except OSError:  # interface down / queue full: the frame is lost, like on a wire
                    d.lost += 1
            if d.queue:
                wait = d.queue[0][0] - now
                nxt = wait if nxt is None else min(nxt, wait)
        return nxt

    def stats(self) -> dict[str, object]:
        return {"uptime_s": round(time.monotonic() - self.started, 3), "impairment": self.imp.__dict__,
                "a_to_b": self.dirs[0].stats(), "b_to_a": self.dirs[1].stats()}

    def command(self, line: str) -> bool:
        """Apply one control line; False means quit."""
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as err:
            self.reply({"error": f"bad JSON: {err}"})
            return True
        cmd = msg.get("cmd")
        if cmd == "quit":
            return False
        if cmd == "set":
            for key, value in msg.items():
                if key != "cmd" and hasattr(self.imp, key):
                    setattr(self.imp, key, type(getattr(self.imp, key))(value))
            self.reply({"ok": True, "impairment": self.imp.__dict__})
        elif cmd == "stats":
            self.reply(self.stats())
        else:
            self.reply({"error": f"unknown cmd {cmd!r}"})
        return True

    @staticmethod
    def reply(obj: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def run(self) -> None:
        poller = select.poll()
        for fd in (*self.fds, sys.stdin.fileno()):
            poller.register(fd, select.POLLIN)
        stdin_buf = b""
        timeout: float | None = None
        while True:
            events = poller.poll(None if timeout is None else max(0, math.ceil(timeout * 1000)))
            now = time.monotonic()
            for fd, _ in events:
                if fd == self.fds[0]:
                    self.receive(0, now)
                elif fd == self.fds[1]:
                    self.receive(1, now)
                else:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        return  # controller went away: stop, the TAP interfaces vanish with us
                    stdin_buf += chunk
                    while b"\n" in stdin_buf:
                        line, stdin_buf = stdin_buf.split(b"\n", 1)
                        if line.strip() and not self.command(line.decode()):
                            return
            timeout = self.deliver(time.monotonic())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ns-a", required=True)
    parser.add_argument("--ns-b", required=True)
    parser.add_argument("--ifname", default="eth0")
    parser.add_argument("--mtu", type=int, default=1500)
    parser.add_argument("--allowed", required=True, help="comma-separated IPv4 addresses of the two hosts")
    parser.add_argument("--label-ports", action="store_true",
                        help="count first fragments of UDP datagrams by dst port <- src address:port and length")
    args = parser.parse_args()
    allowed = frozenset(socket.inet_aton(a) for a in args.allowed.split(","))
    enter_netns(args.ns_a)
    fd_a = open_tap(args.ifname)
    enter_netns(args.ns_b)
    fd_b = open_tap(args.ifname)
    wire = Wire(fd_a, fd_b, allowed, args.mtu, args.label_ports)
    Wire.reply({"ready": True, "pid": os.getpid()})
    try:
        wire.run()
    finally:
        os.close(fd_a)
        os.close(fd_b)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
