"""LeRobot dataset writing (through LeRobot's own LeRobotDataset API) and rosbag2 reading. ROS-free.

``spec.DatasetSpec`` says what a dataset holds (cameras, joint names, fps, videos on/off);
``writer.DatasetWriter`` owns one LeRobot v3 dataset and writes episodes crash-safely;
``recovery`` is the commit journal and quarantine behind that guarantee.
"""
