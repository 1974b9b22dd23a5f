"""LeRobot dataset writing (through LeRobot's own LeRobotDataset API) and rosbag2 reading. ROS-free.

``spec.DatasetSpec`` says what a dataset holds (cameras, joint names, fps, videos on/off);
``writer.DatasetWriter`` owns one LeRobot v3 dataset and writes episodes crash-safely;
``recovery`` is the commit journal and quarantine behind that guarantee; ``video_spool`` (with
``video_encode_worker``) encodes camera videos behind capture, one process per camera.

Live recording: ``recording_config`` is the one parameter table of the recorder node and the bag converter;
``recording.Recorder`` aligns streams (``core.frame_alignment``), applies the gap policy (``core.frame_gaps``)
and feeds the writer through ``writer_queue``; ``recorder_types`` holds its config, status and episode notes.

rosbag2 side (``rosbags``, no ROS install): ``bag_reader`` / ``bag_writer`` open and write bags,
``bag_messages`` turns messages into images and joint vectors, ``bag_config`` is the recorder's
configuration read offline, ``episode_segmentation`` splits recordings, ``bag_conversion`` streams bags
into the writer (with ``conversion_ledger`` making it idempotent, ``conversion_report`` saying what it did);
``dataset_reader`` / ``dataset_to_bag`` go the other way (``wallx_ros.analysis.open_loop_report`` compares a
policy's chunks with a dataset's actions). LeRobot's dataset API itself is ``wallx_ros.lerobot.datasets``; this
package never imports the policy.
"""
