"""Teleop node: keyboard (terminal), sensor_msgs/Joy or leader-arm mirroring -> the follower's command.

Publishes at ``rate_hz`` the robot command (``~/joint_trajectory`` JointTrajectory for a
joint_trajectory_controller, or ``~/joint_command`` JointState) and the same target as ``~/action``
(JointState), the topic the recorder stores as LeRobot's ``action``. Nothing is published before the
follower's ``joint_states`` arrived (the target starts at the measured position). Motion needs the
dead-man input; speed limits and joint limits apply to every step (``core.teleop``).
"""

from __future__ import annotations

import os
import select
import sys
import threading
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from wallx_ros.core.errors import CoreError, TeleopError
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.core.teleop import KEYBOARD_HELP, KeyboardJog, TeleopCommander, TeleopConfig
from wallx_ros.nodes.executors import spin_node
from wallx_ros.nodes.parameters import declare_and_read
from wallx_ros.nodes.ros_conversions import duration_from_s

__all__ = ["TABLE", "TeleopNode", "main"]

MODES = ("keyboard", "joy", "leader")
DEADMAN_SOURCES = ("auto", "joy", "topic", "none")
_ARROWS = {"\x1b[A": "up", "\x1b[B": "down"}


TABLE = ParameterTable("wallx_teleop", [
    Param("mode", ParamType.STRING, "keyboard", "keyboard (terminal), joy (sensor_msgs/Joy) or leader (JointState)",
          choices=MODES),
    Param("joint_names", ParamType.STRING_ARRAY, [""], "follower joints, in command order (required)"),
    Param("max_velocity", ParamType.DOUBLE_ARRAY, [0.5],
          "speed limit per joint (rad/s or m/s): one value or one per joint"),
    Param("lower_limits", ParamType.DOUBLE_ARRAY, [0.0],
          "joint lower limits (same length as joint_names, or [0.0] = none)"),
    Param("upper_limits", ParamType.DOUBLE_ARRAY, [0.0],
          "joint upper limits (same length as joint_names, or [0.0] = none)"),
    Param("rate_hz", ParamType.DOUBLE, 50.0, "command rate", low=0.1, high=1000.0),
    Param("input_timeout_s", ParamType.DOUBLE, 0.25, "joy / leader / dead-man input older than this counts as released",
          low=1e-3),
    Param("command_type", ParamType.STRING, "JointTrajectory",
          "JointTrajectory (~/joint_trajectory) or JointState (~/joint_command)",
          choices=("JointTrajectory", "JointState")),
    Param("command_time_s", ParamType.DOUBLE, 0.0, "JointTrajectory time_from_start of the target (0: 2 periods)",
          low=0.0, high=60.0),
    Param("deadman", ParamType.STRING, "auto", "auto (joy: button, keyboard: SPACE arming, leader: ~/deadman), joy, "
          "topic (~/deadman std_msgs/Bool), none (leader mode only)", choices=DEADMAN_SOURCES),
    Param("deadman_button", ParamType.INTEGER, 4, "Joy button that must be held (dead-man)", low=0),
    Param("joy_axes", ParamType.INTEGER_ARRAY, [0], "Joy axis per joint (-1: none), in joint_names order", low=-1),
    Param("joy_axis_scale", ParamType.DOUBLE_ARRAY, [1.0], "per axis: fraction of max_velocity at full deflection"),
    Param("leader_joint_names", ParamType.STRING_ARRAY, [""],
          "leader mode: leader joint mirrored by each follower joint (default: the same names)"),
    Param("keyboard_step", ParamType.DOUBLE, 0.05, "keyboard: rad (or m) per key press", low=0.0),
    Param("keyboard_idle_timeout_s", ParamType.DOUBLE, 10.0, "keyboard: disarm after this long without a key",
          low=0.0),
], summary="Keyboard, joystick or leader-arm teleoperation: rate- and limit-checked joint commands.")


class TeleopNode(Node):
    """Turns operator input into rate- and limit-checked joint commands."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        values = declare_and_read(self, TABLE)

        def get(name: str) -> Any:
            return values[name]

        self.mode = str(get("mode"))
        joints = tuple(n for n in get("joint_names") if n)
        lower = tuple(float(v) for v in get("lower_limits"))
        upper = tuple(float(v) for v in get("upper_limits"))
        if lower == (0.0,) and upper == (0.0,):
            lower = upper = ()
        config = TeleopConfig(joint_names=joints, max_velocity=tuple(float(v) for v in get("max_velocity")),
                              lower=lower, upper=upper, input_timeout_s=float(get("input_timeout_s")))
        self.commander = TeleopCommander(config)
        self._lock = threading.Lock()
        self._selector = JointSelector(joints)
        rate = float(get("rate_hz"))
        self._command_time = float(get("command_time_s")) or 2.0 / rate
        self._command_type = str(get("command_type"))
        if self._command_type == "JointTrajectory":
            self._command_pub = self.create_publisher(JointTrajectory, "~/joint_trajectory", 10)
        elif self._command_type == "JointState":
            self._command_pub = self.create_publisher(JointState, "~/joint_command", 10)
        else:
            raise TeleopError(f"command_type must be JointTrajectory or JointState, got {self._command_type!r}")
        self._action_pub = self.create_publisher(JointState, "~/action", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_states, 10)

        deadman = str(get("deadman"))
        if deadman == "auto":
            deadman = {"joy": "joy", "keyboard": "keyboard", "leader": "topic"}[self.mode]
        if deadman == "none" and self.mode != "leader":
            raise TeleopError("deadman none is only allowed for leader-arm mirroring")
        self.deadman = deadman
        self._deadman_button = int(get("deadman_button"))
        if deadman == "topic":
            self.create_subscription(Bool, "~/deadman", self._on_deadman, 10)
        self._joy_axes = [int(a) for a in get("joy_axes")]
        scale = [float(v) for v in get("joy_axis_scale")]
        self._joy_scale = scale * len(joints) if len(scale) == 1 else scale
        if self.mode == "joy" and (len(self._joy_axes) != len(joints) or len(self._joy_scale) != len(joints)):
            raise TeleopError(f"joy_axes and joy_axis_scale need one entry per joint ({len(joints)})")
        if self.mode == "joy" or deadman == "joy":
            self.create_subscription(Joy, "joy", self._on_joy, 10)
        if self.mode == "leader":
            leader = tuple(n for n in get("leader_joint_names") if n) or joints
            if len(leader) != len(joints):
                raise TeleopError(f"leader_joint_names needs {len(joints)} names, got {len(leader)}")
            self._leader_selector = JointSelector(leader)
            self.create_subscription(JointState, "leader/joint_states", self._on_leader, 10)
        self._keyboard: KeyboardJog | None = None
        self._stop = threading.Event()
        self._key_thread: threading.Thread | None = None
        if self.mode == "keyboard":
            self._keyboard = KeyboardJog(self.commander, float(get("keyboard_step")),
                                         float(get("keyboard_idle_timeout_s")))
            self._start_keyboard()
        self.create_timer(1.0 / rate, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        command_topic = "~/joint_trajectory" if self._command_type == "JointTrajectory" else "~/joint_command"
        self.get_logger().info(
            f"ready: {self.mode} teleop of {list(joints)}, dead-man {self.deadman}, max velocity "
            f"{list(config.max_velocity)}; command {self.resolve_topic_name(command_topic)}, "
            f"action {self.resolve_topic_name('~/action')}; waiting for joint_states")

    def _now(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    # -- inputs ------------------------------------------------------------------------------------------
    def _on_joint_states(self, msg: JointState) -> None:
        try:
            positions = self._selector.select(msg.name, msg.position)
        except CoreError as err:
            self.get_logger().error(f"joint_states: {err}", throttle_duration_sec=2.0)
            return
        with self._lock:
            first = self.commander.target is None
            self.commander.set_measured(positions)
        if first:
            self.get_logger().info("follower position received: publishing commands (holding until armed)")

    def _on_deadman(self, msg: Bool) -> None:
        with self._lock:
            self.commander.set_deadman(bool(msg.data), self._now())

    def _on_joy(self, msg: Joy) -> None:
        now = self._now()
        with self._lock:
            if self.deadman == "joy":
                b = self._deadman_button
                self.commander.set_deadman(0 <= b < len(msg.buttons) and bool(msg.buttons[b]), now)
            if self.mode != "joy":
                return
            vmax = self.commander.config.max_velocity
            velocity = [0.0] * len(vmax)
            for j, axis in enumerate(self._joy_axes):
                if 0 <= axis < len(msg.axes):
                    value = max(-1.0, min(1.0, float(msg.axes[axis])))
                    velocity[j] = value * self._joy_scale[j] * vmax[j]
            try:
                self.commander.set_velocity(velocity, now)
            except TeleopError as err:
                self.get_logger().error(f"joy: {err}", throttle_duration_sec=2.0)

    def _on_leader(self, msg: JointState) -> None:
        try:
            positions = self._leader_selector.select(msg.name, msg.position)
        except CoreError as err:
            self.get_logger().error(f"leader: {err}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self.commander.set_leader(positions, self._now())
            if self.deadman == "none":
                self.commander.set_deadman(True, self._now())

    # -- keyboard ----------------------------------------------------------------------------------------
    def _start_keyboard(self) -> None:
        if not sys.stdin.isatty():
            self.get_logger().error("keyboard mode needs a terminal on stdin: run the node in a terminal "
                                    "(ros2 run wallx_ros teleop_node), not in the background")
            return
        self.get_logger().info(KEYBOARD_HELP)
        self._key_thread = threading.Thread(target=self._read_keys, name="wallx_teleop_keys", daemon=True)
        self._key_thread.start()

    def _read_keys(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(fd, 16).decode(errors="ignore")
                keys = [_ARROWS[chunk]] if chunk in _ARROWS else list(chunk)
                for key in keys:
                    with self._lock:
                        assert self._keyboard is not None
                        status = self._keyboard.key(key, self._now())
                    self.get_logger().info(status)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    # -- output ------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self._now()
        with self._lock:
            if self._keyboard is not None:
                self._keyboard.refresh(now)
            target = self.commander.step(now)
        if target is None:
            return
        names = list(self.commander.config.joint_names)
        stamp = self.get_clock().now().to_msg()
        positions = target.tolist()
        if self._command_type == "JointTrajectory":
            traj = JointTrajectory()
            traj.joint_names = names  # header.stamp 0: start at the controller's next cycle
            point = JointTrajectoryPoint()
            point.positions = positions
            point.time_from_start = duration_from_s(self._command_time)
            traj.points = [point]
            self._command_pub.publish(traj)
        else:
            cmd = JointState()
            cmd.header.stamp = stamp
            cmd.name = names
            cmd.position = positions
            self._command_pub.publish(cmd)
        action = JointState()
        action.header.stamp = stamp
        action.name = names
        action.position = positions
        self._action_pub.publish(action)

    def _publish_diagnostics(self) -> None:
        now = self._now()
        with self._lock:
            armed = self.commander.armed(now)
            ready = self.commander.target is not None
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: teleop"
        status.level = DiagnosticStatus.OK if ready else DiagnosticStatus.WARN
        status.message = ("armed" if armed else "holding") if ready else "waiting for joint_states"
        status.values = [KeyValue(key="mode", value=self.mode), KeyValue(key="deadman", value=self.deadman),
                         KeyValue(key="armed", value=str(armed))]
        if self._keyboard is not None:
            status.values.append(KeyValue(key="keyboard_joint", value=self._keyboard.joint_name))
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diag_pub.publish(array)

    def shutdown(self) -> None:
        self._stop.set()
        if self._key_thread is not None:
            self._key_thread.join(timeout=1.0)


def main(args: list[str] | None = None) -> int:
    return spin_node(TeleopNode, args=args, logger_name=TABLE.node_name, table=TABLE, startup_errors=(CoreError,),
                     on_exit=TeleopNode.shutdown)


if __name__ == "__main__":
    raise SystemExit(main())
