"""The embedded MuJoCo simulation, ROS-free: gym-aloha scenes, JTC-like trajectory execution, cameras.

``wallx_ros.nodes.sim_node`` puts it on the ROS graph (cameras, /joint_states, /clock, a
JointTrajectory subscription).
"""

from wallx_ros.sim.config import SimConfig
from wallx_ros.sim.simulation import Simulation, StepResult
from wallx_ros.sim.trajectory_executor import ExecutionPhase, ReceivedTrajectory, Setpoint, TrajectoryExecutor

__all__ = [
           "ExecutionPhase",
           "ReceivedTrajectory",
           "Setpoint",
           "SimConfig",
           "Simulation",
           "StepResult",
           "TrajectoryExecutor",
]
