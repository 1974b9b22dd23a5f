"""DDS stays on loopback with the project's settings, on this stack's rmw (Fast DDS 2 on Jazzy, 3 on Kilted).

Inside a private network namespace that has loopback plus one veth interface (10.99.0.1, its peer in the same
namespace, so nothing can leave the machine) a publisher and a subscriber process exchange 640x480 camera
frames. With the project's environment (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and config/fastdds_loopback.xml,
which Jazzy reads from FASTRTPS_DEFAULT_PROFILES_FILE and Kilted from FASTDDS_DEFAULT_PROFILES_FILE) the veth
must send nothing and the 16 MB shared-memory segments must deliver (nearly) every frame. The same run with
ROS defaults must send packets out of the veth: proof that the counter sees leaks.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from ros_harness import REPO_ROOT, subprocess_env

from wallx_ros.cli.fastdds_profile import PROFILE_VARIABLES, profile_variable

SECONDS = 3.0
# /proc/net/dev is per network namespace (sysfs is not remounted): field 10 after "v0:" is TX packets
NETNS_SCRIPT = r"""
set -e
tx() {{ awk '/^ *v0:/ {{ sub(/^ *v0:/, ""); print $10 }}' /proc/net/dev; }}
ip link set lo up
ip link add v0 type veth peer name v1
sysctl -qw net.ipv6.conf.v0.disable_ipv6=1 net.ipv6.conf.v1.disable_ipv6=1
ip addr add 10.99.0.1/24 dev v0
ip link set v1 up
ip link set v0 up
before=$(tx)
{sub} &
sub_pid=$!
sleep 0.5
{pub}
wait $sub_pid
echo "TX $(( $(tx) - before ))"
"""


def _netns_available() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare (util-linux) and ip (iproute2)"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace with a veth pair here (root needed): {probe.stderr.strip()}"
    return None


def _run(env: dict[str, str]) -> dict[str, float]:
    probe = shlex.quote(str(REPO_ROOT / "test" / "dds_leak_probe.py"))
    python = shlex.quote(sys.executable)
    # the subscriber counts until the publisher is gone (bounded: 90 s), however slowly the publisher starts
    script = NETNS_SCRIPT.format(sub=f"{python} {probe} sub 90", pub=f"{python} {probe} pub {SECONDS}")
    run = subprocess.run(["unshare", "-n", "bash", "-c", script], capture_output=True, text=True, env=env,
                         timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result: dict[str, float] = {}
    for line in run.stdout.splitlines():
        if line.startswith("PROBE "):
            result.update(json.loads(line[6:]))
        elif line.startswith("TX "):
            result["tx_packets"] = int(line[3:])
    assert {"sent", "received", "tx_packets"} <= set(result), run.stdout + run.stderr
    return result


def test_dds_stays_on_loopback_and_delivers_large_frames() -> None:
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    domain = str(100 + os.getpid() % 100)
    project = subprocess_env({"ROS_DOMAIN_ID": domain})  # conftest's loopback settings
    assert project["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    # the profile in the one variable this distribution's Fast DDS reads (the other would only warn, or be ignored)
    assert [v for v in PROFILE_VARIABLES if v in project] == [profile_variable()]
    ours = _run(project)
    assert ours["tx_packets"] == 0, f"DDS sent {ours['tx_packets']} packets on a non-loopback interface: {ours}"
    assert ours["sent"] > 30 and ours["received"] >= 0.9 * ours["sent"], f"large frames were lost: {ours}"

    defaults = dict(project)
    for var in ("ROS_AUTOMATIC_DISCOVERY_RANGE", profile_variable()):
        defaults.pop(var)
    leaky = _run(defaults)
    assert leaky["tx_packets"] > 0, f"ROS defaults should multicast on the veth (is the counter blind?): {leaky}"
