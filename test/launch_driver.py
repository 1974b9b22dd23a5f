"""Run one of this package's launch files as ``ros2 launch wallx_ros <file> name:=value ...`` does, for a while.

    python launch_driver.py <file.launch.py> <seconds> [name:=value ...]

The file is found through the ament index (share/wallx_ros/launch), included with the given arguments, and the
launch is shut down after ``seconds`` if it is still running. Exit code: LaunchService's (non-zero when the
launch failed). Only where launch/launch_ros are installed (not on PyPI).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription, Shutdown, TimerAction
from launch.launch_description_sources import PythonLaunchDescriptionSource

import launch


def main() -> int:
    name, seconds, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    path = Path(get_package_share_directory("wallx_ros")) / "launch" / name
    arguments = [tuple(a.split(":=", 1)) for a in argv]
    service = launch.LaunchService(argv=argv, noninteractive=True)
    service.include_launch_description(launch.LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(path)), launch_arguments=arguments),
        TimerAction(period=seconds, actions=[Shutdown(reason="launch_driver: time is up")]),
    ]))
    return service.run()


if __name__ == "__main__":
    raise SystemExit(main())
