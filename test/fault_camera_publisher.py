"""A camera driver stand-in in its own process (killed and restarted by the fault-injection tests).

    python fault_camera_publisher.py TOPIC HEIGHT WIDTH SEED

Publishes rgb8 ``sensor_msgs/Image`` on TOPIC (SensorDataQoS) every 20 ms of wall time, stamped with its
node clock under ``use_sim_time`` (the test owns /clock); nothing before the first /clock message.
"""

from __future__ import annotations

import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from wallx_ros import ros_compat


def main() -> None:
    topic, height, width, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    try:
        with ros_compat.init():
            node = rclpy.create_node("fault_camera", parameter_overrides=[Parameter("use_sim_time", value=True)])
            pub = node.create_publisher(Image, topic, qos_profile_sensor_data)

            def tick() -> None:
                now = node.get_clock().now()
                if now.nanoseconds == 0:
                    return
                msg = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=rgb.tobytes())
                msg.header.stamp = now.to_msg()
                pub.publish(msg)

            from rclpy.clock import Clock, ClockType

            node.create_timer(0.02, tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
