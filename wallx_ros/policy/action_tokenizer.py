"""A FAST-style action tokenizer that needs no hub download and runs no checkpoint code.

WALL-OSS's fast mode turns a (T, D) action chunk into discrete tokens and back. LeRobot loads the
tokenizer ``physical-intelligence/fast`` from the hub as remote code (``trust_remote_code=True``). This
module is a self-contained stand-in with the interface WallX calls: ``tokenizer(chunks) -> token ids``,
``tokenizer.decode(token_lists, time_horizon=, action_dim=) -> (B, T, D)`` and ``vocab_size``. Like
FAST it applies a DCT along time and quantises the coefficients; unlike FAST it has no BPE merge stage
(the trained BPE vocabulary is part of the hub download), so it needs T*D tokens per chunk.

Its settings are a JSON file (``wallx_ros_action_tokenizer.json``) that wallx_ros reads as data. The
module depends only on numpy and scipy so that its source can also be placed in a checkpoint for
stock LeRobot, whose loader insists on remote code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.fft import dct, idct

__all__ = ["ACTION_TOKENIZER_FILENAME", "DctActionTokenizer"]

ACTION_TOKENIZER_FILENAME = "wallx_ros_action_tokenizer.json"


class DctActionTokenizer:
    """DCT + uniform quantisation; token ids lie in [0, vocab_size)."""

    def __init__(self, vocab_size: int = 256, scale: float = 10.0, time_horizon: int = 32, action_dim: int = 20,
                 **_: Any) -> None:
        if vocab_size < 2 or scale <= 0 or time_horizon < 1 or action_dim < 1:
            raise ValueError("vocab_size >= 2, scale > 0, time_horizon >= 1 and action_dim >= 1 are required")
        self.vocab_size = int(vocab_size)
        self.scale = float(scale)
        self.time_horizon = int(time_horizon)
        self.action_dim = int(action_dim)
        self._offset = self.vocab_size // 2

    def __call__(self, action_chunk: Any) -> list[list[int]]:
        chunks = np.asarray(action_chunk, dtype=np.float64)
        if chunks.ndim == 2:
            chunks = chunks[None]
        tokens = []
        for chunk in chunks:
            coeffs = np.rint(dct(chunk, axis=0, norm="ortho") * self.scale).astype(np.int64) + self._offset
            tokens.append(np.clip(coeffs, 0, self.vocab_size - 1).reshape(-1).tolist())
        return tokens

    def decode(self, tokens: Any, time_horizon: int | None = None, action_dim: int | None = None) -> np.ndarray:
        horizon = int(time_horizon or self.time_horizon)
        dim = int(action_dim or self.action_dim)
        out = np.zeros((len(tokens), horizon, dim), dtype=np.float64)
        for i, seq in enumerate(tokens):
            ids = np.asarray(list(seq)[: horizon * dim], dtype=np.float64)
            coeffs = np.zeros(horizon * dim, dtype=np.float64)
            coeffs[: ids.size] = ids - self._offset
            out[i] = idct(coeffs.reshape(horizon, dim) / self.scale, axis=0, norm="ortho")
        return out

    # -- persistence: JSON settings only --------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "scale": self.scale, "time_horizon": self.time_horizon,
                "action_dim": self.action_dim}

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / ACTION_TOKENIZER_FILENAME).write_text(json.dumps(self.settings(), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], **_: Any) -> DctActionTokenizer:
        path = Path(directory)
        name = ACTION_TOKENIZER_FILENAME if (path / ACTION_TOKENIZER_FILENAME).exists() else "processor_config.json"
        raw = json.loads((path / name).read_text())
        return cls(**{k: raw[k] for k in ("vocab_size", "scale", "time_horizon", "action_dim") if k in raw})

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoProcessor") -> None:
        """transformers calls this when the class is loaded as remote code; nothing to register."""
