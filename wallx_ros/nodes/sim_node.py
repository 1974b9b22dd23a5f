"""Simulation node: the embedded MuJoCo scene on the ROS graph, standing in for a ros2_control robot.

Publishes ``/clock`` (sim time: run every other node with ``use_sim_time:=true``), ``joint_states``
(every control period), ``<camera>/image_raw`` + ``<camera>/camera_info`` (SensorDataQoS, at
``camera_rate_hz`` of sim time), ``/diagnostics``, and RViz markers (``~/robot_markers``: the arms;
``~/predicted_path``: where the newest accepted trajectory takes the grippers), the ground-truth pose of
every free object (``objects/<body>/pose``, geometry_msgs/PoseStamped in ``world``, every control period:
what a scripted demonstrator or an evaluation reads) and, in the transfer-cube scene, gym-aloha's task stage
(``~/task_stage``, std_msgs/Int32 0..4, 4 = success, latched, on change). Subscribes to
``arm_controller/joint_trajectory`` (RELIABLE, like a joint_trajectory_controller) and executes it with
JTC's rules (:mod:`wallx_ros.sim.trajectory_executor`).

Episodes: ``~/reset`` (std_srvs/Trigger) places the objects again for the current ``seed`` parameter (the
one parameter that may change at run time: ``ros2 param set /wallx_sim seed 7``), puts the arms back at the
start pose and drops the running trajectory; sim time keeps running.

Pacing: a steady-clock timer steps one control period per tick at ``real_time_factor``; when rendering or
the CPU cannot keep up, sim time simply runs slower (the achieved factor is in the diagnostics).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point as PointMsg
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Int32
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from wallx_ros.analysis.run_log import RunLogWriter
from wallx_ros.core.joint_trajectory_rules import JtcOptions
from wallx_ros.core.parameter_table import Param, ParameterTable, ParamType
from wallx_ros.nodes.executors import spin_node
from wallx_ros.nodes.parameters import declare_and_read
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns
from wallx_ros.sim.config import DEFAULT_CAMERA_MAP, SCENES, SimConfig, parse_camera_map
from wallx_ros.sim.errors import SimError
from wallx_ros.sim.simulation import Simulation, StepResult
from wallx_ros.sim.trajectory_executor import ReceivedTrajectory
from wallx_ros.sim.transfer_cube import CUBE_BODY, transfer_cube_stage

__all__ = ["TABLE", "TRAJECTORY_TOPIC", "SimNode", "main"]

TRAJECTORY_TOPIC = "arm_controller/joint_trajectory"  # what a JTC named arm_controller subscribes to
WORLD_FRAME = "world"
_SIDE_COLOURS = {"left": (0.2, 0.6, 1.0), "right": (1.0, 0.5, 0.1)}


_D = SimConfig()
TABLE = ParameterTable("wallx_sim", [
    Param("scene", ParamType.STRING, _D.scene, "gym-aloha scene", choices=tuple(sorted(SCENES))),
    Param("seed", ParamType.INTEGER, _D.seed, "object placement seed as gym-aloha samples it; -1 = the scene keyframe "
          "(may change at run time: used by the next ~/reset)", low=-1, read_only=False),
    Param("control_rate_hz", ParamType.DOUBLE, _D.control_rate_hz, "trajectory executor / joint_states rate (sim time)",
          low=1.0, high=2000.0),
    Param("camera_rate_hz", ParamType.DOUBLE, _D.camera_rate_hz, "camera frame rate in sim time; 0 = no rendering",
          low=0.0, high=2000.0),
    Param("image_width", ParamType.INTEGER, _D.image_width, "rendered image width (px)", low=16, high=4096),
    Param("image_height", ParamType.INTEGER, _D.image_height, "rendered image height (px)", low=16, high=4096),
    Param("cameras", ParamType.STRING_ARRAY, list(DEFAULT_CAMERA_MAP),
          "published camera key = MJCF camera, one per entry"),
    Param("render_shadows", ParamType.BOOL, _D.render_shadows, "shadows (costly with software OpenGL)"),
    Param("real_time_factor", ParamType.DOUBLE, _D.real_time_factor, "target sim seconds per wall second",
          low=1e-6, high=100.0),
    Param("max_joint_velocity", ParamType.DOUBLE, _D.max_joint_velocity, "arm joint command rate limit (rad/s)",
          low=1e-6),
    Param("max_gripper_velocity", ParamType.DOUBLE, _D.max_gripper_velocity,
          "gripper command rate limit (normalised/s)", low=1e-6),
    Param("allow_nonzero_velocity_at_trajectory_end", ParamType.BOOL, False, "JTC parameter of the same name"),
    Param("interpolate_from_desired_state", ParamType.BOOL, False, "JTC parameter of the same name: a new trajectory "
          "starts from the last command instead of the measured state (for streamed teleop targets)"),
    Param("objects_in_joint_states", ParamType.BOOL, False, "also publish each free object's position as joints "
          "<body>_x, <body>_y, <body>_z in joint_states (a perception stand-in for object-conditioned policies)"),
    Param("run_log", ParamType.STRING, "", "path of a JSONL run log for wallx-ros-plot-run; empty = none"),
    Param("diagnostics_period_s", ParamType.DOUBLE, 1.0, "wall seconds between /diagnostics messages",
          low=1e-3, high=3600.0),
    Param("log_status", ParamType.BOOL, False, "log a one-line status every diagnostics period"),
], summary="The embedded MuJoCo ALOHA scene on the ROS graph (publishes /clock: run the others with use_sim_time).")


class SimNode(Node):
    """Runs one gym-aloha scene and executes JointTrajectory commands like a joint_trajectory_controller."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(TABLE.node_name, **kwargs)
        config, options, run_log, diagnostics_period = self._read_parameters()
        self.sim = Simulation(config, options, bool(self.get_parameter("interpolate_from_desired_state").value))
        self.config = config
        self._names = list(self.sim.joint_names)
        self._object_joints = bool(self.get_parameter("objects_in_joint_states").value)
        self._state_names = list(self._names)  # what joint_states reports: the robot's joints (+ object positions)
        if self._object_joints:
            self._state_names += [f"{body}_{axis}" for body in self.sim.scene.object_poses() for axis in "xyz"]
        self._run_log: RunLogWriter | None = None
        if run_log:
            try:
                self._run_log = RunLogWriter(run_log, self._names, self.sim.limits.lower, self.sim.limits.upper,
                                             config.control_rate_hz, {k: str(v) for k, v in asdict(config).items()})
            except OSError as err:
                self.sim.close()
                raise SimError(f"cannot write the run log {run_log}: {err} (choose another run_log path)") from err

        self._clock_pub = self.create_publisher(ClockMsg, "/clock", QoSProfile(depth=1))
        self._joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self._image_pubs = {c.key: self.create_publisher(Image, f"{c.key}/image_raw", qos_profile_sensor_data)
                            for c in config.cameras}
        self._info_pubs = {c.key: self.create_publisher(CameraInfo, f"{c.key}/camera_info", qos_profile_sensor_data)
                           for c in config.cameras}
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._robot_markers = self.create_publisher(MarkerArray, "~/robot_markers", 1)
        self._path_markers = self.create_publisher(MarkerArray, "~/predicted_path", 1)
        self.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, self._on_trajectory,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._object_pubs = {body: self.create_publisher(PoseStamped, f"objects/{body}/pose", 10)
                             for body in self.sim.scene.object_poses()}
        self._stage_pub = None
        self._stage = -1
        if CUBE_BODY in self._object_pubs:
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self._stage_pub = self.create_publisher(Int32, "~/task_stage", latched)
        self._seed = config.seed
        self._resets = 0
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, "~/reset", self._on_reset)

        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._wall_period_s = config.control_period_ns * 1e-9 / config.real_time_factor
        self._timer = self.create_timer(self._wall_period_s, self._tick, clock=steady)
        self.create_timer(diagnostics_period, self._publish_diagnostics, clock=steady)
        self._window_start = (time.monotonic(), 0)
        self._achieved_rtf = 0.0
        self._last_step: StepResult | None = None
        self.get_logger().info(
            f"scene {config.scene}: joints {self._state_names}; cameras "
            f"{[f'{c.key}<-{c.mjcf_camera}' for c in config.cameras]} at {config.camera_rate_hz:g} Hz "
            f"{config.image_width}x{config.image_height}; control {config.control_rate_hz:g} Hz at "
            f"real_time_factor {config.real_time_factor:g}; trajectories on {self.resolve_topic_name(TRAJECTORY_TOPIC)}"
        )

    # -- parameters --------------------------------------------------------------------------------------
    def _read_parameters(self) -> tuple[SimConfig, JtcOptions, str, float]:
        values = declare_and_read(self, TABLE)

        def get(name: str) -> Any:
            return values[name]

        config = SimConfig(
            scene=str(get("scene")), seed=int(get("seed")), control_rate_hz=float(get("control_rate_hz")),
            camera_rate_hz=float(get("camera_rate_hz")), image_width=int(get("image_width")),
            image_height=int(get("image_height")), cameras=parse_camera_map(list(get("cameras"))),
            render_shadows=bool(get("render_shadows")), real_time_factor=float(get("real_time_factor")),
            max_joint_velocity=float(get("max_joint_velocity")),
            max_gripper_velocity=float(get("max_gripper_velocity")),
        )
        period = float(get("diagnostics_period_s"))
        options = JtcOptions(
            allow_nonzero_velocity_at_trajectory_end=bool(get("allow_nonzero_velocity_at_trajectory_end")))
        self._log_status = bool(get("log_status"))
        return config, options, str(get("run_log")), period

    # -- episodes ----------------------------------------------------------------------------------------
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == "seed" and (p.type_ != Parameter.Type.INTEGER or int(p.value) < -1):
                return SetParametersResult(successful=False, reason="seed must be an integer >= -1")
        return SetParametersResult(successful=True)

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        seed = int(self.get_parameter("seed").value)
        self.sim.reset(seed)
        self._seed = seed
        self._resets += 1
        poses = self.sim.scene.object_poses()
        where = "; ".join(f"{b} at {np.round(p[:3], 3).tolist()}" for b, p in poses.items())
        response.success = True
        response.message = f"reset {self._resets}: seed {seed}, {where}"
        self.get_logger().info(response.message)
        return response

    # -- trajectory input --------------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        command = ReceivedTrajectory(tuple(msg.joint_names), tuple(msg.points), stamp_to_ns(msg.header.stamp))
        problems = self.sim.offer(command)
        wall = time.monotonic()
        if problems:
            self.get_logger().error(
                f"trajectory rejected (as a joint_trajectory_controller would): {'; '.join(problems)}",
                throttle_duration_sec=2.0)
            if self._run_log is not None:
                self._run_log.trajectory(self.sim.time_ns, wall, command.stamp_ns, problems)
            return
        order = [command.joint_names.index(n) for n in self._names]
        positions = np.array([np.asarray(p.positions, dtype=np.float64)[order] for p in msg.points])
        tfs = [stamp_to_ns(p.time_from_start) for p in msg.points]
        if self._run_log is not None:
            self._run_log.trajectory(self.sim.time_ns, wall, command.stamp_ns, [], tfs, positions)
        self._publish_predicted_path(positions)

    # -- the loop ----------------------------------------------------------------------------------------
    def _tick(self) -> None:
        step = self.sim.step()
        self._last_step = step
        stamp = time_from_ns(step.time_ns)
        self._clock_pub.publish(ClockMsg(clock=stamp))
        js = JointState()
        js.header.stamp = stamp
        js.name = self._state_names
        positions, velocities = step.positions.tolist(), step.velocities.tolist()
        if self._object_joints:  # positions only: the velocity of an object is not measured
            for pose in self.sim.scene.object_poses().values():
                positions += [float(v) for v in pose[:3]]
            velocities += [0.0] * (len(positions) - len(velocities))
        js.position, js.velocity = positions, velocities
        self._joint_pub.publish(js)
        self._publish_objects(stamp)
        if self._run_log is not None:
            self._run_log.step(step.time_ns, time.monotonic(), step.positions, step.command, step.phase.value,
                               step.wall_ms)
        if self.sim.frames_due():
            before = self.sim.stats.render_wall_s
            frames = self.sim.render()
            for key, rgb in frames.items():
                self._image_pubs[key].publish(self._image_msg(rgb, stamp, key))
                self._info_pubs[key].publish(self._camera_info(key, stamp))
            self._publish_robot_markers(stamp)
            if self._run_log is not None and frames:
                self._run_log.frames(step.time_ns, (self.sim.stats.render_wall_s - before) * 1e3 / len(frames))

    def _publish_objects(self, stamp: Time) -> None:
        for body, pose in self.sim.scene.object_poses().items():
            msg = PoseStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = WORLD_FRAME
            p, q = msg.pose.position, msg.pose.orientation
            p.x, p.y, p.z = (float(v) for v in pose[:3])
            q.w, q.x, q.y, q.z = (float(v) for v in pose[3:])
            self._object_pubs[body].publish(msg)
        if self._stage_pub is not None:
            stage = transfer_cube_stage(self.sim.scene)
            if stage != self._stage:
                self._stage = stage
                self._stage_pub.publish(Int32(data=stage))

    @staticmethod
    def _image_msg(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
        msg = Image()
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
        msg.encoding = "rgb8"
        msg.step = msg.width * 3
        msg.data = rgb.tobytes()
        return msg

    def _camera_info(self, key: str, stamp: Time) -> CameraInfo:
        k = self.sim.intrinsics(key)
        info = CameraInfo()
        info.header.stamp = stamp
        info.header.frame_id = key
        info.width, info.height = k.width, k.height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = k.k
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    # -- RViz markers ------------------------------------------------------------------------------------
    @staticmethod
    def _line(ns: str, marker_id: int, points: np.ndarray, rgb: tuple[float, float, float], width: float,
              alpha: float, stamp: Time, kind: int = Marker.LINE_STRIP) -> Marker:
        m = Marker()
        m.header.frame_id = WORLD_FRAME
        m.header.stamp = stamp
        m.ns, m.id, m.type, m.action = ns, marker_id, kind, Marker.ADD
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = width
        m.color.r, m.color.g, m.color.b = rgb
        m.color.a = alpha
        m.points = [PointMsg(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in points]
        return m

    def _publish_robot_markers(self, stamp: Time) -> None:
        if self._robot_markers.get_subscription_count() == 0:
            return
        markers = MarkerArray()
        for i, (side, rgb) in enumerate(_SIDE_COLOURS.items()):
            chain = self.sim.scene.arm_chain_points(side)
            markers.markers.append(self._line("arm", i, chain, rgb, 0.02, 1.0, stamp))
            markers.markers.append(self._line("joints", i, chain, rgb, 0.035, 1.0, stamp, Marker.SPHERE_LIST))
        self._robot_markers.publish(markers)

    def _publish_predicted_path(self, positions: np.ndarray) -> None:
        if self._path_markers.get_subscription_count() == 0:
            return
        tips = np.array([self.sim.scene.gripper_positions_for(row) for row in positions])  # (points, 2, 3)
        stamp = time_from_ns(self.sim.time_ns)
        markers = MarkerArray()
        for i, (_side, rgb) in enumerate(_SIDE_COLOURS.items()):
            markers.markers.append(self._line("predicted_gripper_path", i, tips[:, i], rgb, 0.01, 0.5, stamp))
        self._path_markers.publish(markers)

    # -- diagnostics -------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        start_wall, start_ns = self._window_start
        if now > start_wall:
            self._achieved_rtf = (self.sim.time_ns - start_ns) * 1e-9 / (now - start_wall)
        self._window_start = (now, self.sim.time_ns)
        ex = self.sim.executor.stats
        st = self.sim.stats
        values = {
            "sim_time_s": f"{self.sim.time_ns * 1e-9:.3f}",
            "real_time_factor_target": f"{self.config.real_time_factor:g}",
            "real_time_factor_achieved": f"{self._achieved_rtf:.3f}",
            "control_cycles": str(ex.cycles),
            "missed_control_periods": str(ex.holding_cycles),
            "trajectories_accepted": str(ex.accepted),
            "trajectories_rejected": str(ex.rejected),
            "trajectories_replaced_while_running": str(ex.replaced_while_running),
            "trajectory_points_skipped": str(ex.skipped_points),
            "limited_commands": str(st.clamped_steps),
            "physics_step_ms": f"{st.mean_step_ms:.3f}",
            "render_ms_per_frame": f"{st.mean_render_ms:.3f}",
            "frames_rendered": str(st.frames),
            "phase": self._last_step.phase.value if self._last_step else "starting",
            "seed": str(self._seed),
            "resets": str(self._resets),
        }
        if self._stage_pub is not None:
            values["task_stage"] = str(self._stage)
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: simulation"
        status.hardware_id = self.config.scene
        if ex.last_rejection and ex.rejected:
            values["last_rejection"] = "; ".join(ex.last_rejection)
        behind = self._achieved_rtf < 0.8 * self.config.real_time_factor and ex.cycles > 0
        status.level = DiagnosticStatus.WARN if behind else DiagnosticStatus.OK
        status.message = (f"running at {self._achieved_rtf:.2f}x real time (target {self.config.real_time_factor:g}x)"
                          if behind else "running")
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = time_from_ns(self.sim.time_ns)
        array.status = [status]
        self._diag_pub.publish(array)
        if self._log_status:
            self.get_logger().info(
                f"sim t={values['sim_time_s']} s at {values['real_time_factor_achieved']}x real time; trajectories "
                f"{values['trajectories_accepted']} accepted / {values['trajectories_rejected']} rejected; "
                f"missed control periods {values['missed_control_periods']}/{values['control_cycles']}; render "
                f"{values['render_ms_per_frame']} ms/frame; {values['phase']}")
        if self._run_log is not None:
            self._run_log.flush()

    def shutdown(self) -> None:
        if self._run_log is not None:
            self._run_log.close()
        self.sim.close()


def main(args: list[str] | None = None) -> int:
    return spin_node(SimNode, args=args, logger_name=TABLE.node_name, table=TABLE, startup_errors=(SimError,),
                     on_exit=SimNode.shutdown)


if __name__ == "__main__":
    raise SystemExit(main())
