"""Users load their datasets with plain LeRobot: a fresh interpreter, no wallx_ros import, LeRobotDataset.

In the kilted venv (CPU torch, torchvision from PyPI) ``import torchvision`` used to die on
``operator torchvision::nms does not exist`` unless ``wallx_ros.lerobot.versions.prepare_runtime()`` ran
first. scripts/setup.sh now installs a venv hook (scripts/venv_hooks/) that fixes the import for everyone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from dataset_child import FRAMES, H, W, frame_values, spec_for

from wallx_ros.dataset.writer import DatasetWriter

CHILD = """
import sys
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("local/crash", root=sys.argv[1])
item = ds[len(ds) - 1]
print("LOADED", ds.num_episodes, len(ds), tuple(item["observation.images.face_view"].shape),
      item["observation.state"].tolist(), "wallx_ros" in sys.modules)
"""


def test_a_fresh_interpreter_loads_a_recorded_dataset_with_plain_lerobot(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(spec_for(root, streaming_encoding=True)) as writer:
        writer.start_episode()
        for i in range(FRAMES):
            img, state, action = frame_values(0, i)
            writer.add_frame({"face_view": img}, state, action, "task 0")
        writer.save_episode()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this checkout on the path
    run = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=600)
    assert run.returncode == 0, (
        "plain `from lerobot.datasets.lerobot_dataset import LeRobotDataset` fails in this venv; scripts/setup.sh "
        f"installs the fix (scripts/venv_hooks/install.py):\n{run.stderr[-3000:]}")
    line = next(x for x in run.stdout.splitlines() if x.startswith("LOADED"))
    _, episodes, frames, _rest = line.split(" ", 3)
    assert (int(episodes), int(frames)) == (1, FRAMES) and f"(3, {H}, {W})" in line, line
    last_state = frame_values(0, FRAMES - 1)[1]
    assert str(np.asarray(last_state).tolist()) in line and line.endswith("False"), line
