"""LeRobot dataset writing (through LeRobot's own LeRobotDataset API) and rosbag2 reading. ROS-free.

``spec.DatasetSpec`` says what a dataset holds (cameras, joint names, fps, videos on/off);
``writer.DatasetWriter`` owns one LeRobot v3 dataset and writes episodes crash-safely;
``recovery`` is the commit journal and quarantine behind that guarantee.

rosbag2 side (``rosbags``, no ROS install): ``bag_reader`` / ``bag_writer`` open and write bags,
``bag_messages`` turns messages into images and joint vectors, ``bag_config`` is the recorder's
configuration read offline, ``episode_segmentation`` splits recordings, ``bag_conversion`` streams bags
into the writer (with ``conversion_ledger`` making it idempotent); ``dataset_reader`` / ``dataset_to_bag``
go the other way and ``open_loop_report`` compares a policy's chunks with a dataset's actions.
"""
