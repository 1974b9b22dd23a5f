"""The action normalisation statistics a LeRobot policy folder carries: what the policy was trained on.

LeRobot saves the dataset statistics the policy normalises with next to the weights: the postprocessor's
unnormalizer step (``policy_postprocessor.json`` -> its ``state_file``, a safetensors file) holds
``action.min`` / ``action.max`` (and mean/std) per model action dimension. The policy node derives joint
limits from them when neither parameters nor a URDF give any (``core.limit_sources.stats_limits``).
Read with safetensors directly: no LeRobot, no torch, nothing executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import RobotMappingError
from wallx_ros.core.robot_mapping import ROBOT_MAPPING_FILENAME, RobotMapping
from wallx_ros.policy.errors import CheckpointError

__all__ = ["ActionStats", "load_action_stats"]

_PIPELINES = ("policy_postprocessor.json", "policy_preprocessor.json")


@dataclass(frozen=True)
class ActionStats:
    """``minimum`` / ``maximum`` per USED action dimension (the robot mapping's order), model units."""

    minimum: npt.NDArray[np.float64]
    maximum: npt.NDArray[np.float64]
    chunk_size: int
    source: str  # the file they came from


def _state_files(policy_dir: Path) -> list[Path]:
    files = []
    for name in _PIPELINES:
        path = policy_dir / name
        if not path.is_file():
            continue
        try:
            steps = json.loads(path.read_text()).get("steps", [])
        except (OSError, ValueError, AttributeError) as err:
            raise CheckpointError(f"cannot read {path}: {err}") from err
        for step in steps if isinstance(steps, list) else []:
            state = step.get("state_file") if isinstance(step, dict) else None
            if isinstance(state, str) and state and Path(state).name == state:
                files.append(policy_dir / state)
    return files


def load_action_stats(policy_dir: str | Path) -> ActionStats | None:
    """The folder's action statistics, or None when it has none (no processor state with action min/max)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(policy_dir)
    try:
        config = json.loads((folder / "config.json").read_text())
        chunk_size = int(config.get("chunk_size") or config.get("n_action_steps") or 0)
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"cannot read the chunk size from {folder / 'config.json'}: {err}") from err
    if chunk_size < 1:
        return None
    for path in _state_files(folder):
        try:
            tensors = load_file(str(path))
        except (OSError, SafetensorError, ValueError) as err:
            raise CheckpointError(f"cannot read the normalisation statistics {path}: {err}") from err
        if "action.min" not in tensors or "action.max" not in tensors:
            continue
        low = np.asarray(tensors["action.min"], dtype=np.float64).ravel()
        high = np.asarray(tensors["action.max"], dtype=np.float64).ravel()
        columns = list(range(len(low)))
        if (folder / ROBOT_MAPPING_FILENAME).is_file():
            try:
                columns = list(RobotMapping.load(folder).action_columns)
            except RobotMappingError as err:
                raise CheckpointError(str(err)) from err
        if len(high) != len(low) or (columns and max(columns) >= len(low)):
            raise CheckpointError(f"{path}: action.min/max have {len(low)}/{len(high)} values, the robot mapping "
                                  f"uses action columns up to {max(columns) if columns else -1}")
        return ActionStats(low[columns], high[columns], chunk_size, path.name)
    return None
