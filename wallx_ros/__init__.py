"""wallx_ros: ROS 2 nodes for the WALL-OSS vision-language-action model (LeRobot ``wall_x`` policy).

Layout: ``core`` (ROS-free numpy types and algorithms), ``policy`` (model backends behind one small
interface, the inference worker), ``dataset`` (LeRobot dataset writing, rosbag2), ``nodes`` (thin rclpy
adapters), ``cli`` (command-line tools).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
