"""LeRobot dataset writing (through LeRobot's own LeRobotDataset API) and rosbag2 reading. ROS-free."""
