"""A model that outputs NaN: the node publishes nothing, keeps running and reports an error."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from policy_sim_driver import S, SimDriver, status_values
from ros_harness import RosTestNode, running_node, wait_until
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

NODE = "/wallx_policy"


@pytest.fixture(scope="module")
def nan_checkpoint(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with one action std set to NaN: every chunk has a NaN column after un-normalising."""
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("nan_ckpt") / "tiny_nan"
    shutil.copytree(tiny_checkpoint, out)
    stats_file = next(out.glob("policy_postprocessor_step_*_unnormalizer_processor.safetensors"))
    stats = load_file(str(stats_file))
    key = next(k for k in stats if k.startswith("action") and k.endswith("std"))
    stats[key][3] = math.nan
    save_file(stats, str(stats_file))
    return out


def test_nan_actions_publish_nothing_and_are_reported(ros: RosTestNode, nan_checkpoint: Path, tmp_path: Path) -> None:
    params = {"checkpoint_dir": str(nan_checkpoint), "allow_random_weights": True, "num_threads": 1,
              "warmup": False, "use_sim_time": True, "diagnostics_rate_hz": 4.0}
    trajectories = ros.collect(JointTrajectory, f"{NODE}/joint_trajectory")
    status = ros.collect(DiagnosticStatus, f"{NODE}/status")
    diagnostics = ros.collect(DiagnosticArray, "/diagnostics")
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(3000 * S)
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params, tmp_path) as proc:
            assert driver.wait_for_node(), proc.output()[-3000:]
            driver.rate = 0.1

            def rejected() -> bool:
                assert proc.alive(), proc.output()[-3000:]
                return any(int(status_values(m)["chunks_rejected"]) >= 1 for m in list(status.messages))

            assert driver.pulse_until(rejected, 180), proc.output()[-3000:]
            last = status_values(status.messages[-1])
            assert "non-finite" in last["last_problem"] and last["chunks_published"] == "0"
            assert trajectories.messages == []

            def error_diagnostic() -> bool:
                controls = [d for m in list(diagnostics.messages) for d in m.status if d.name.endswith(": control")]
                return any(d.level == DiagnosticStatus.ERROR and "non-finite" in status_values(d)["last_problem"]
                           for d in controls)

            assert wait_until(error_diagnostic, 10)
            time.sleep(0.5)
            assert proc.alive()
    finally:
        driver.close()
