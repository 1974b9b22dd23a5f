"""ROS-free core: numpy types and algorithms shared by every node and tool. Never imports rclpy."""
