"""Checkpoint tooling: folders checked before anything loads them, converted between LeRobot lines, packaged
for the policy node, and the tiny random-weight checkpoint tests and demos build offline. No torch at import.

- ``checkpoint_files``: safety checks on a folder before LeRobot or transformers open it (no pickles, sizes).
- ``checkpoint_convert``: a ``wall_x`` policy folder between the LeRobot 0.4 and 0.6 layouts.
- ``checkpoint_packaging``: a ``lerobot-train`` checkpoint made self-contained (backbone, robot mapping).
- ``tiny_checkpoint``: a complete tiny WALL-OSS checkpoint built through LeRobot's classes.

The action statistics a checkpoint carries are read by ``policy.action_stats`` (kept beside the node's imports).
"""

from wallx_ros.policy.checkpoints.checkpoint_convert import (
    LINES,
    CheckpointConversionReport,
    CheckpointLayout,
    convert_checkpoint,
    detect_layout,
)
from wallx_ros.policy.checkpoints.checkpoint_files import (
    PICKLE_SUFFIXES,
    check_folder,
    check_processor_config,
    check_weights_are_safetensors,
    pickle_files,
)
from wallx_ros.policy.checkpoints.checkpoint_packaging import (
    TOOL,
    package_checkpoint,
)
from wallx_ros.policy.checkpoints.tiny_checkpoint import (
    ALOHA_JOINTS,
    CHECKPOINT_INFO_FILENAME,
    DEFAULT_CAMERAS,
    TinyCheckpointSpec,
    build_tiny_checkpoint,
)

__all__ = [
    "ALOHA_JOINTS",
    "CHECKPOINT_INFO_FILENAME",
    "DEFAULT_CAMERAS",
    "LINES",
    "PICKLE_SUFFIXES",
    "TOOL",
    "CheckpointConversionReport",
    "CheckpointLayout",
    "TinyCheckpointSpec",
    "build_tiny_checkpoint",
    "check_folder",
    "check_processor_config",
    "check_weights_are_safetensors",
    "convert_checkpoint",
    "detect_layout",
    "package_checkpoint",
    "pickle_files",
]
