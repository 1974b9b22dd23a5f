"""Read a LeRobot dataset back as numpy: RGB uint8 images, float32 state/action, the task text.

Opening goes through ``wallx_ros.lerobot.datasets.load_dataset`` (the one package that imports LeRobot);
this module only converts LeRobot's tensors (images float (C, H, W) in [0, 1]) to the arrays wallx_ros uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.dataset.errors import DatasetError

__all__ = ["DatasetFrame", "DatasetReader"]

_IMAGE_PREFIX = "observation.images."


@dataclass(frozen=True)
class DatasetFrame:
    """One frame of one episode."""

    episode_index: int
    frame_index: int
    timestamp_s: float
    images: dict[str, npt.NDArray[np.uint8]]
    state: npt.NDArray[np.float32]
    action: npt.NDArray[np.float32]
    task: str


def _to_uint8_hwc(image: Any) -> npt.NDArray[np.uint8]:
    arr = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
    if arr.dtype == np.uint8:
        return arr if arr.shape[-1] == 3 else np.ascontiguousarray(arr.transpose(1, 2, 0))
    hwc = arr.transpose(1, 2, 0) if arr.shape[0] == 3 else arr
    return np.ascontiguousarray(np.clip(np.rint(hwc * 255.0), 0, 255).astype(np.uint8))


def _vector(value: Any) -> npt.NDArray[np.float32]:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float32).reshape(-1)


class DatasetReader:
    """A local LeRobot v3 dataset at ``root``: metadata and frames in episode order."""

    def __init__(self, root: str | Path, repo_id: str | None = None, episodes: list[int] | None = None) -> None:
        from wallx_ros.lerobot.datasets import load_dataset

        self.root = Path(root)
        if not (self.root / "meta" / "info.json").is_file():
            raise DatasetError(f"{self.root} is not a LeRobot dataset (no meta/info.json)")
        try:
            self._ds = load_dataset(repo_id or f"local/{self.root.name}", self.root, episodes=episodes)
        except Exception as err:
            raise DatasetError(f"cannot open the LeRobot dataset at {self.root}: {type(err).__name__}: {err}") from err
        features: dict[str, dict[str, Any]] = self._ds.meta.features
        self.fps = float(self._ds.meta.fps)
        self.robot_type = str(self._ds.meta.robot_type or "")
        self.cameras = tuple(k[len(_IMAGE_PREFIX):] for k in features if k.startswith(_IMAGE_PREFIX))
        for key in ("observation.state", "action"):
            if key not in features:
                raise DatasetError(f"dataset {self.root} has no {key!r} feature")
        self.state_names = self._names(features["observation.state"], "observation.state")
        self.action_names = self._names(features["action"], "action")
        self.image_shapes = {cam: tuple(int(x) for x in features[_IMAGE_PREFIX + cam]["shape"])
                             for cam in self.cameras}

    @staticmethod
    def _names(feature: dict[str, Any], key: str) -> tuple[str, ...]:
        names = feature.get("names")
        if isinstance(names, dict):  # {"motors": [...]} in some datasets
            names = next(iter(names.values()), None)
        size = int(np.prod(feature["shape"]))
        if not names or len(names) != size:
            return tuple(f"{key}_{i}" for i in range(size))
        return tuple(str(n) for n in names)

    @property
    def num_frames(self) -> int:
        return len(self._ds)

    @property
    def num_episodes(self) -> int:
        return int(self._ds.meta.total_episodes)

    def episode_indices(self) -> list[int]:
        episodes = self._ds.episodes
        return list(episodes) if episodes is not None else list(range(self.num_episodes))

    def frames(self) -> Iterator[DatasetFrame]:
        """Every frame, in dataset order (episode by episode)."""
        for i in range(len(self._ds)):
            yield self.frame(i)

    def frame(self, i: int) -> DatasetFrame:
        item = self._ds[i]
        return DatasetFrame(
            episode_index=int(item["episode_index"]),
            frame_index=int(item["frame_index"]),
            timestamp_s=float(item["timestamp"]),
            images={cam: _to_uint8_hwc(item[_IMAGE_PREFIX + cam]) for cam in self.cameras},
            state=_vector(item["observation.state"]),
            action=_vector(item["action"]),
            task=str(item["task"]),
        )

    def actions_and_index(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """All actions (N, A) with each row's episode index and frame index, without decoding images."""
        hf = self._ds.hf_dataset
        cols = hf.with_format("numpy")
        return (np.asarray(np.stack(cols["action"]), dtype=np.float32),
                np.asarray(cols["episode_index"], dtype=np.int64), np.asarray(cols["frame_index"], dtype=np.int64))
