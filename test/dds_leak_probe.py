"""Helper for test_dds_loopback_only.py: ``python dds_leak_probe.py pub|sub SECONDS``.

pub: waits (bounded) for a subscriber, then publishes 640x480 rgb8 Images best-effort at 30 Hz for SECONDS.
sub: counts what arrives from the moment the publisher is discovered until it is gone (plus a short drain), at
most SECONDS in all: on a loaded machine the publisher's start-up (imports, discovery) can take seconds, and a
fixed counting window would then end before its last frames. Each prints one ``PROBE {json}`` line.
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from wallx_ros import ros_compat


def main() -> int:
    role, seconds = sys.argv[1], float(sys.argv[2])
    with ros_compat.init(args=[]):
        node = rclpy.create_node(f"leak_probe_{role}")
        result: dict[str, float] = {}
        if role == "pub":
            pub = node.create_publisher(Image, "leak_probe", qos_profile_sensor_data)
            msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3, data=bytes(640 * 480 * 3))
            t0 = time.monotonic()
            while pub.get_subscription_count() == 0 and time.monotonic() - t0 < 20:
                time.sleep(0.05)
            result["discovery_s"] = time.monotonic() - t0
            sent, t1 = 0, time.monotonic()
            while time.monotonic() - t1 < seconds:
                pub.publish(msg)
                sent += 1
                time.sleep(1 / 30)
            result["sent"] = sent
        else:
            got: list[int] = []
            node.create_subscription(Image, "leak_probe", lambda m: got.append(len(m.data)), qos_profile_sensor_data)
            t0 = time.monotonic()
            seen, gone_at = False, None
            while time.monotonic() - t0 < seconds:
                rclpy.spin_once(node, timeout_sec=0.05)
                publishers = node.count_publishers("leak_probe")
                seen = seen or publishers > 0
                if seen and publishers == 0 and gone_at is None:
                    gone_at = time.monotonic()
                if gone_at is not None and time.monotonic() - gone_at > 1.0:  # drained
                    break
            result["received"] = len(got)
            result["publisher_seen"] = float(seen)
        node.destroy_node()
    print("PROBE " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
