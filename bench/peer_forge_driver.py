"""Run the peer converter (forge-robotics, PyPI) on a rosbag2 mcap through its public Python API.

Runs in the peer's own venv (outside the repo): `PEER_PY bench/peer_forge_driver.py BAG.mcap OUT --fps 30`.
Forge's CLI auto-detects topics and syncs on the busiest topic (the 60 Hz joint states), so the driver
passes it an explicit topic config: the same 3 cameras, state and action, synced on the face camera.
Prints one JSON line with frames and seconds.
"""

import argparse
import json
import time
from pathlib import Path

from forge.formats.lerobot_v3.writer import LeRobotV3Writer, LeRobotV3WriterConfig
from forge.formats.mcap.reader import MCAPReader
from forge.formats.mcap.topic_config import load_config

ap = argparse.ArgumentParser()
ap.add_argument("mcap", type=Path)
ap.add_argument("out", type=Path)
ap.add_argument("--fps", type=float, default=30.0)
ap.add_argument("--cameras", default="face_view,left_wrist_view,right_wrist_view")
ap.add_argument("--transport", default="raw")
a = ap.parse_args()

suffix = "image_raw" if a.transport == "raw" else "image_raw/compressed"
fields = "\n".join(f"  observation.images.{c}:\n    topic: /{c}/{suffix}" for c in a.cameras.split(","))
cfg_path = a.out.with_suffix(".forge_topics.yaml")
cfg_path.write_text(f"""episodes:
  strategy: single
fields:
{fields}
  observation.state:
    topic: /joint_states
    field: position
  action:
    topic: /teleop/joint_command
    field: position
sync:
  primary: observation.images.{a.cameras.split(',')[0]}
  method: nearest
  max_skew_ms: 50
task:
  description: benchmark
""")
start = time.perf_counter()
episodes = MCAPReader().read_episodes(a.mcap, config=load_config(cfg_path))
writer = LeRobotV3Writer(LeRobotV3WriterConfig(fps=a.fps))
writer.write_dataset(episodes, a.out)
elapsed = time.perf_counter() - start
info = json.loads((a.out / "meta" / "info.json").read_text())
print(json.dumps({"frames": info["total_frames"], "seconds": round(elapsed, 2),
                  "features": sorted(info["features"]), "codec": "libx264 (forge default)"}))
