"""Settings of a policy backend, validated on construction (separate from the model code)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from wallx_ros.policy.errors import BackendConfigError

__all__ = ["ENGINES", "FLOW_ATTENTION", "PREDICTION_MODES", "BackendConfig"]

PREDICTION_MODES = ("diffusion", "fast")
# "stock": LeRobot's predict_action_chunk. "fast_flow": wallx_ros.policy.engine.flow_engine (flow mode only; same
# actions, prefix KV cache reused across denoising steps). "auto": fast_flow where it supports the
# checkpoint and the installed LeRobot, else stock.
ENGINES = ("auto", "stock", "fast_flow")
FLOW_ATTENTION = ("auto", "eager", "sdpa")
# LeRobot's WallX keeps its weights in bfloat16 (norms and the action head in float32) and casts the
# proprioception embedding to bfloat16 itself, so a float32 model fails at the first forward.
_DTYPES = ("bfloat16",)


@dataclass(frozen=True)
class BackendConfig:
    """How to load and run one policy checkpoint.

    checkpoint_dir: a LeRobot ``wall_x`` policy folder (config.json, model.safetensors,
        policy_preprocessor.json, policy_postprocessor.json), e.g. ``lerobot-train`` output's
        ``pretrained_model`` folder, or one made by ``wallx-ros-make-test-checkpoint``.
    backbone_dir: local copy of the WALL-OSS backbone (x-square-robot/wall-oss-flow) when the
        checkpoint does not carry one in ``wallx_backbone/`` and its config names a hub id.
    mode: "diffusion" (flow matching) or "fast" (autoregressive action tokens); "" = the checkpoint's.
    action_tokenizer_dir: fast mode only; folder of the action tokenizer. wallx_ros's own DCT tokenizer
        (``wallx_ros_action_tokenizer.json``) loads without running code; anything else (e.g. a local
        copy of physical-intelligence/fast) is remote code and needs ``trust_remote_code``.
    allow_random_weights: accept a model whose weights are random (test checkpoints only).
    seed: re-seed torch before every prediction (deterministic flow noise); None = free-running.
    fast_action_tokens_only: fast mode; restrict generation to action tokens + end-of-sequence.
    engine: how chunks are computed (ENGINES). ``auto``: the fast engines where validated (flow mode: fast_flow;
        fast mode: LeRobot's generate with fast_decode's decode steps); ``stock``: LeRobot's predict_action_chunk
        untouched; ``fast_flow``: flow mode must run fast_flow (error if it cannot); in fast mode as ``auto``.
    flow_attention: fast_flow's attention kernel: "eager" (stock's math, bit-identical actions on CPU),
        "sdpa" (fused kernels, same attention pattern, bf16-rounding differences), "auto" = sdpa on CUDA.
    cuda_graphs: on CUDA: fast_flow captures the whole flow once per prompt shape and replays it;
        fast_decode captures its single-token decode step once and replays it per token.
    flow_compile: fast_flow: torch.compile one decoder layer and one vision block (fewer, fused kernels;
        compiles at warm-up; bf16 rounding differs from stock's).
    rtc / rtc_max_guidance: real-time chunking (flow mode, fast_flow and stock): predictions given a prefix of
        the running plan are guided towards it, the guidance gain capped at ``rtc_max_guidance``
        (``policy/engine/rtc_guidance.py``). With CUDA graphs, the guidance is captured into the graph.
    """

    checkpoint_dir: Path
    device: str = "cpu"
    dtype: str = "bfloat16"
    mode: str = ""
    backbone_dir: Path | None = None
    action_tokenizer_dir: Path | None = None
    allow_random_weights: bool = False
    trust_remote_code: bool = False
    seed: int | None = None
    num_threads: int = 0
    fast_action_tokens_only: bool = False
    fast_min_new_tokens: int = 0
    engine: str = "auto"
    flow_attention: str = "auto"
    cuda_graphs: bool = True
    flow_compile: bool = False
    rtc: bool = False
    rtc_max_guidance: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir).expanduser())
        if self.backbone_dir is not None:
            object.__setattr__(self, "backbone_dir", Path(self.backbone_dir).expanduser())
        if self.action_tokenizer_dir is not None:
            object.__setattr__(self, "action_tokenizer_dir", Path(self.action_tokenizer_dir).expanduser())
        if not str(self.checkpoint_dir) or str(self.checkpoint_dir) == ".":
            raise BackendConfigError("checkpoint_dir is empty: give the policy folder to load")
        if self.mode not in ("", *PREDICTION_MODES):
            raise BackendConfigError(f"mode must be one of {PREDICTION_MODES} or '' (checkpoint's), got {self.mode!r}")
        if self.dtype not in _DTYPES:
            raise BackendConfigError(
                f"dtype must be one of {_DTYPES} (WallX's mixed bf16/fp32 layout), got {self.dtype!r}")
        dev = self.device
        if not (dev in ("cpu", "cuda", "auto") or dev.startswith("cuda:")):
            raise BackendConfigError(f"device must be cpu, cuda, cuda:N or auto, got {dev!r}")
        if self.engine not in ENGINES:
            raise BackendConfigError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.flow_attention not in FLOW_ATTENTION:
            raise BackendConfigError(f"flow_attention must be one of {FLOW_ATTENTION}, got {self.flow_attention!r}")
        if not 0 <= self.fast_min_new_tokens <= 100:
            raise BackendConfigError(f"fast_min_new_tokens must be in [0, 100], got {self.fast_min_new_tokens}")
        if not (math.isfinite(self.rtc_max_guidance) and self.rtc_max_guidance > 0):
            raise BackendConfigError(f"rtc_max_guidance must be finite and > 0, got {self.rtc_max_guidance}")
        if self.num_threads < 0:
            raise BackendConfigError(f"num_threads must be >= 0 (0 = torch default), got {self.num_threads}")
