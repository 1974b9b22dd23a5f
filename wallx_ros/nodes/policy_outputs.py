"""Where the policy node's commands go: one output per ``output_mode``, plus the visual aids.

Outputs (``output_mode``): ``trajectory`` publishes JointTrajectory on ``~/joint_trajectory``; ``action`` sends
each one as a FollowJointTrajectory goal; ``joint_state`` / ``array`` stream one command per control period
(JointState on ``~/joint_commands`` / Float64MultiArray on ``~/commands``) sampled from the committed plan.
``dry_run`` moves every output under ``~/dry_run/`` and sends no goal. Visual aids: the ghost (the plan
ahead, ``~/ghost/joint_states``), the raw chunk-boundary jump (``~/boundary_jump``) and, with a URDF, the
predicted path of the links (``~/predicted_path``). All are lifecycle publishers: silent while inactive.

This module only turns checked commands into messages: what may be published (the controller's rules,
limits, finiteness of the plan) is decided before, by ``core.policy_control``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from rclpy.lifecycle import LifecycleNode
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from wallx_ros.core.chunk_execution import Plan
from wallx_ros.core.policy_control import TrajectoryCommand
from wallx_ros.core.urdf import UrdfModel
from wallx_ros.nodes.policy_parameters import PolicyNodeConfig
from wallx_ros.nodes.policy_status import path_markers
from wallx_ros.nodes.ros_conversions import time_from_ns, trajectory_from_arrays

__all__ = ["PolicyOutputs"]


class PolicyOutputs:
    """The lifecycle publishers (and action client) of one configuration of the policy node."""

    def __init__(self, node: LifecycleNode, cfg: PolicyNodeConfig, urdf: UrdfModel | None,
                 callback_group: Any = None) -> None:
        self._node = node
        self._cfg = cfg
        self._urdf = urdf
        self.prefix = "~/dry_run/" if cfg.dry_run else "~/"
        self._trajectory = node.create_lifecycle_publisher(JointTrajectory, self.prefix + "joint_trajectory", 10)
        self._stream: Any = None
        self._fjt: Any = None
        if cfg.output_mode == "joint_state":
            self._stream = node.create_lifecycle_publisher(JointState, self.prefix + "joint_commands", 10)
        elif cfg.output_mode == "array":
            self._stream = node.create_lifecycle_publisher(Float64MultiArray, self.prefix + "commands", 10)
        elif cfg.output_mode == "action" and not cfg.dry_run:
            from wallx_ros.nodes.follow_joint_trajectory import FollowJointTrajectoryOutput

            self._fjt = FollowJointTrajectoryOutput(node, cfg.action_name, callback_group)
        self._ghost = node.create_lifecycle_publisher(JointState, "~/ghost/joint_states", 10)
        self._jump = node.create_lifecycle_publisher(Float64, "~/boundary_jump", 10)
        self._markers = (node.create_lifecycle_publisher(MarkerArray, "~/predicted_path", 10)
                         if urdf is not None else None)

    @property
    def streaming(self) -> bool:
        """True in the streamed modes (joint_state, array): commands are sampled every control period."""
        return self._stream is not None

    @property
    def trajectory_topic(self) -> str:
        return self._node.resolve_topic_name(self.prefix + "joint_trajectory")

    def send(self, command: TrajectoryCommand) -> None:
        """Publish a checked chunk or hold through the configured output. The streamed modes publish nothing
        here: they sample the committed plan in the control tick (``stream``)."""
        if self._cfg.output_mode in ("trajectory",) or self._cfg.dry_run:
            self._trajectory.publish(trajectory_from_arrays(command.names, command.stamp_ns,
                                                            command.times_from_start_ns, command.positions,
                                                            command.velocities))
        elif self._cfg.output_mode == "action" and self._fjt is not None:
            self._fjt.send(trajectory_from_arrays(command.names, command.stamp_ns, command.times_from_start_ns,
                                                  command.positions, command.velocities))

    def stream(self, names: tuple[str, ...], position: npt.NDArray[np.float64], velocity: npt.NDArray[np.float64],
               now_ns: int) -> bool:
        """One streamed command; False (nothing published) if the sample is not finite."""
        if self._stream is None:
            return True
        if not (np.all(np.isfinite(position)) and np.all(np.isfinite(velocity))):
            return False
        if self._cfg.output_mode == "joint_state":
            msg = JointState()
            msg.header.stamp = time_from_ns(now_ns)
            msg.name = list(names)
            msg.position = position.tolist()
            msg.velocity = velocity.tolist()
            self._stream.publish(msg)
        else:
            self._stream.publish(Float64MultiArray(data=position.tolist()))
        return True

    def ghost(self, names: tuple[str, ...], position: npt.NDArray[np.float64], now_ns: int) -> None:
        msg = JointState()
        msg.header.stamp = time_from_ns(now_ns)
        msg.name = list(names)
        msg.position = position.tolist()
        self._ghost.publish(msg)

    def boundary_jump(self, jump: float) -> None:
        self._jump.publish(Float64(data=float(jump)))

    def predicted_path(self, plan: Plan) -> None:
        if self._markers is not None and self._urdf is not None:
            self._markers.publish(path_markers(self._urdf, plan, self._cfg.marker_links,
                                               self._node.get_clock().now()))

    def destroy(self) -> None:
        """Destroy the publishers (the action client stays with the node, as it always did)."""
        for pub in (self._trajectory, self._stream, self._ghost, self._jump, self._markers):
            if pub is not None:
                self._node.destroy_lifecycle_publisher(pub)
