"""The recorder's config is the bag converter's too (config/<node>.yaml against each node's parameter table:
test_parameter_tables.py)."""

from __future__ import annotations

import yaml
from ros_harness import REPO_ROOT


def test_bag_converter_accepts_the_recorder_config() -> None:
    """wallx-ros-bag2dataset takes config/recorder.yaml as is: every recorder parameter is known to it."""
    from wallx_ros.dataset.bag_config import BagConversionConfig, load_params_file

    params = load_params_file(REPO_ROOT / "config" / "recorder.yaml")
    params.update(joint_names=["a", "b"], action_joint_names=["a", "b"])  # the yaml leaves them to the user
    config = BagConversionConfig.from_params(params)
    assert config.fps == params["fps"] and config.video_codec == params["video_codec"]


def test_bag2dataset_yaml_documents_the_converter_parameters() -> None:
    """config/bag2dataset.yaml lists exactly the converter's parameters (the shared table), with its defaults."""
    from wallx_ros.dataset.recording_config import parameters

    documented = yaml.safe_load((REPO_ROOT / "config" / "bag2dataset.yaml").read_text())["/**"]["ros__parameters"]
    table = {p.name: p.default_for("bag") for p in parameters("bag")}
    assert set(documented) == set(table), set(documented) ^ set(table)
    for name, default in table.items():
        assert documented[name] == default, f"bag2dataset.yaml: {name} is {documented[name]!r}, the default {default!r}"
