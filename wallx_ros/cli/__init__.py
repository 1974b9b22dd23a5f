"""Command-line tools (also installed as ROS executables)."""
