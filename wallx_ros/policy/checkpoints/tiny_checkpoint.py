"""Build a complete, tiny, random-weight WALL-OSS policy checkpoint offline, through LeRobot's classes.

The hub is unreachable, so tests need a model that is real LeRobot ``wall_x`` code end to end but small
enough for a CPU: a Qwen2.5-VL + MoE backbone config with 2 text layers of width 64, a byte-level
tokenizer built locally with ``tokenizers`` (Qwen's special tokens, WallX's ``<|propri|>``,
``<|action|>`` and fast-mode ``<|action_token_i|>`` tokens), the Qwen2.5-VL image processor config,
weights from a seeded random init, and a LeRobot policy folder (config, model.safetensors, pre/post
processors with non-trivial normalisation stats) that ``WallXPolicy.from_pretrained`` loads.

Layout of the folder::

    config.json, model.safetensors, policy_preprocessor*.json/.safetensors, policy_postprocessor*...
    wallx_backbone/          backbone config.json, tokenizer + image processor, empty model.safetensors
    action_tokenizer/        fast mode only: DCT action tokenizer (settings JSON + its source for stock LeRobot)
    wallx_ros_robot.json     joint name of every state/action dimension, camera keys, fps
    wallx_ros_checkpoint.json  marks the weights as random: backends refuse it unless allow_random_weights
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wallx_ros.core.output_folders import replace_folder
from wallx_ros.core.robot_mapping import RobotMapping
from wallx_ros.policy import action_tokenizer as action_tokenizer_module
from wallx_ros.policy.errors import CheckpointError

__all__ = [
    "ALOHA_JOINTS",
    "CHECKPOINT_INFO_FILENAME",
    "DEFAULT_CAMERAS",
    "TinyCheckpointSpec",
    "build_tiny_checkpoint",
]

CHECKPOINT_INFO_FILENAME = "wallx_ros_checkpoint.json"
TOOL = "wallx-ros-make-test-checkpoint"
_NOTE = "tiny WallX with random weights for tests and demos: it does not solve any task"
BACKBONE_SUBDIR = "wallx_backbone"
ACTION_TOKENIZER_SUBDIR = "action_tokenizer"

# Joint names of the ALOHA bimanual robot (the embedded simulation): 2 x (6 arm joints + gripper).
ALOHA_JOINTS: tuple[str, ...] = tuple(
    f"{side}_{j}" for side in ("left", "right")
    for j in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
)
# WALL-OSS's camera names: front and the two wrists.
DEFAULT_CAMERAS: tuple[str, ...] = ("face_view", "left_wrist_view", "right_wrist_view")

_QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
_QWEN_FIRST_SPECIAL_ID = 151643  # id of <|endoftext|> in the real Qwen2.5 vocabulary
_QWEN_ASSISTANT_ID = 77091  # LeRobot 0.4.4 fast mode looks for the ids [151644, 77091] = "<|im_start|>assistant"

# A WALL-OSS-shaped model, shrunk: hidden 64, 2 layers, MoE with a text expert and an action expert.
_TINY_TEXT = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=4096, max_window_layers=2,
    sliding_window=4096, tie_word_embeddings=True,
    rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},  # sums to head_dim / 2 = 8
    experts=[{"hidden_size": 64, "intermediate_size": 128, "hidden_act": "silu"},
             {"hidden_size": 64, "intermediate_size": 64, "hidden_act": "silu"}],
    dim_inputs=[64, 64],
)
_TINY_VISION = dict(
    depth=2, hidden_act="silu", hidden_size=32, intermediate_size=64, num_heads=2, in_channels=3,
    out_hidden_size=64, patch_size=14, spatial_merge_size=2, window_size=112, fullatt_block_indexes=[1],
    tokens_per_second=2, temporal_patch_size=2,
)
# WALL-OSS's 20-dim unified action/proprio layout (both must sum to max_action_dim = 20).
_DOF20 = {
    "follow_left_ee_cartesian_pos": 3, "follow_left_ee_rotation": 3, "follow_left_gripper": 1,
    "follow_right_ee_cartesian_pos": 3, "follow_right_ee_rotation": 3, "follow_right_gripper": 1,
    "head_actions": 2, "height": 1, "car_pose": 3,
}


@dataclass(frozen=True)
class TinyCheckpointSpec:
    """What to build. Fast mode on LeRobot 0.4.4 needs 20 action dims (its decoder assumes the full
    WALL-OSS layout): the robot's joints fill the first dims and the rest are unused."""

    mode: str = "diffusion"
    seed: int = 0
    state_names: tuple[str, ...] = ALOHA_JOINTS
    action_names: tuple[str, ...] = ALOHA_JOINTS
    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    image_hw: tuple[int, int] = (192, 256)
    fps: float = 50.0
    chunk_size: int = 32
    n_action_tokens: int = 64
    robot_type: str = "aloha"

    def __post_init__(self) -> None:
        if self.mode not in ("diffusion", "fast"):
            raise CheckpointError(f"mode must be diffusion or fast, got {self.mode!r}")
        if len(self.state_names) > 20 or len(self.action_names) > 20:
            raise CheckpointError("WALL-OSS has at most 20 state and 20 action dimensions")


def _fast_action_names(spec: TinyCheckpointSpec) -> tuple[str, ...]:
    if spec.mode != "fast":
        return spec.action_names
    return tuple(spec.action_names) + ("",) * (20 - len(spec.action_names))


def build_tokenizer(n_action_tokens: int, qwen_token_ids: bool) -> Any:
    """Qwen2 fast tokenizer built locally: one token per byte, Qwen specials, WallX tokens.

    With ``qwen_token_ids`` filler entries make every special token land on its real Qwen2.5 id and
    the word "assistant" on 77091, as LeRobot 0.4.4's fast mode hard-codes those ids.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined, unused-ignore]  # 5.x: an alias

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    if qwen_token_ids:
        for i in range(len(vocab), _QWEN_FIRST_SPECIAL_ID):
            vocab[f"<|unused_{i}|>"] = i
        del vocab[f"<|unused_{_QWEN_ASSISTANT_ID}|>"]
        vocab["assistant"] = _QWEN_ASSISTANT_ID
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if qwen_token_ids:
        tok.add_tokens([AddedToken("assistant", special=False, normalized=False)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in _QWEN_SPECIAL_TOKENS])
    wallx = ["<|propri|>", "<|action|>"] + [f"<|action_token_{i}|>" for i in range(n_action_tokens)]
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in wallx])
    hf_tok = Qwen2TokenizerFast(
        tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, padding_side="left", model_max_length=32768,
    )
    # read by WallX fast mode from tokenizer.init_kwargs (saved in tokenizer_config.json)
    hf_tok.init_kwargs["action_token_start_index"] = hf_tok.convert_tokens_to_ids("<|action_token_0|>")
    hf_tok.init_kwargs["action_token_vocab_size"] = n_action_tokens
    expected_ids = [_QWEN_FIRST_SPECIAL_ID + 1, _QWEN_ASSISTANT_ID]
    if qwen_token_ids and hf_tok("<|im_start|>assistant\n").input_ids[:2] != expected_ids:
        raise CheckpointError("tokenizer does not map '<|im_start|>assistant' to Qwen's ids")
    return hf_tok


def _write_backbone(directory: Path, spec: TinyCheckpointSpec, lr: Any) -> None:
    from safetensors.torch import save_file

    from wallx_ros.lerobot import versions, wallx_model

    directory.mkdir(parents=True, exist_ok=True)
    qwen_ids = spec.mode == "fast" and versions.fast_mode_needs_qwen_token_ids()
    tok = build_tokenizer(spec.n_action_tokens, qwen_token_ids=qwen_ids)
    consts = lr.wallx_constants
    processor = wallx_model.make_qwen_processor(
        dict(min_pixels=consts.MIN_PIXELS, max_pixels=consts.MAX_PIXELS, patch_size=14, temporal_patch_size=2,
             merge_size=2),
        tok,
    )
    processor.save_pretrained(str(directory))
    ids = {field: tok.convert_tokens_to_ids(token) for field, token in (
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"),
        ("vision_token_id", "<|vision_pad|>"), ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>"), ("bos_token_id", "<|endoftext|>"), ("eos_token_id", "<|im_end|>"))}
    cfg = lr.Qwen2_5_VLConfig(
        vocab_size=len(tok), hidden_act="silu", initializer_range=0.02, attention_dropout=0.0, use_cache=True,
        use_sliding_window=False, vision_config=dict(_TINY_VISION), num_experts=2, attention_moe=False,
        mlp_moe=True, dof_config=dict(_DOF20), agent_pos_config=dict(_DOF20),
        noise_scheduler={"beta_alpha": 1.5, "beta_beta": 1.0, "s": 0.999, "num_inference_timesteps": 10},
        torch_dtype="bfloat16", architectures=["Qwen2_5_VLForConditionalGeneration"], **ids, **_TINY_TEXT,
    )
    cfg.save_pretrained(str(directory))
    # The policy's model.safetensors holds every weight; an empty backbone file keeps LeRobot from
    # reporting a load failure (0.4.4) or raising (0.6.x).
    save_file({}, str(directory / "model.safetensors"), metadata={"format": "pt"})


def _write_action_tokenizer(directory: Path, spec: TinyCheckpointSpec) -> None:
    tokenizer = action_tokenizer_module.DctActionTokenizer(
        vocab_size=spec.n_action_tokens, scale=10.0, time_horizon=spec.chunk_size, action_dim=20)
    tokenizer.save_pretrained(directory)
    # Stock LeRobot loads action tokenizers only as remote code; give it this same module to load.
    source = "processing_wallx_ros_dct.py"
    (directory / source).write_text(inspect.getsource(action_tokenizer_module))
    (directory / "processor_config.json").write_text(json.dumps({
        "auto_map": {"AutoProcessor": "processing_wallx_ros_dct.DctActionTokenizer"},
        "processor_class": "DctActionTokenizer", **tokenizer.settings()}, indent=2) + "\n")


def _stats(n: int, lo: float, hi: float) -> dict[str, Any]:
    import torch

    mean = torch.linspace(lo, hi, n)
    std = torch.linspace(0.5, 1.5, n)
    return {"mean": mean, "std": std, "min": mean - 3 * std, "max": mean + 3 * std}


def _earlier_tiny_checkpoint(folder: Path) -> bool:
    """A test checkpoint this module wrote before output folders were marked (its info file says so)."""
    try:
        info = json.loads((folder / CHECKPOINT_INFO_FILENAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and str(info.get("note", "")).startswith(_NOTE)


def build_tiny_checkpoint(out_dir: str | Path, spec: TinyCheckpointSpec | None = None, force: bool = False) -> Path:
    """Write a tiny random-weight WallX policy folder to ``out_dir``; return it.

    An existing non-empty ``out_dir`` is replaced only when this tool wrote it (or with ``force``): anything
    else raises OutputFolderError, nothing is deleted.
    """
    import torch

    from wallx_ros.lerobot import versions, wallx_model

    spec = spec or TinyCheckpointSpec()
    out = Path(out_dir).expanduser().resolve()
    replace_folder(out, TOOL, force, ours=_earlier_tiny_checkpoint)
    lr = wallx_model.api()
    backbone = out / BACKBONE_SUBDIR
    _write_backbone(backbone, spec, lr)
    action_names = _fast_action_names(spec)
    tokenizer_dir = out / ACTION_TOKENIZER_SUBDIR
    if spec.mode == "fast":
        _write_action_tokenizer(tokenizer_dir, spec)

    cfg = lr.WallXConfig(
        device="cpu", prediction_mode=spec.mode, pretrained_name_or_path=str(backbone),
        action_tokenizer_path=None, attn_implementation="eager",
        chunk_size=spec.chunk_size, n_action_steps=spec.chunk_size,
    )
    feature = lr.PolicyFeature
    kind = lr.FeatureType
    cfg.input_features = {
        "observation.state": feature(type=kind.STATE, shape=(len(spec.state_names),)),
        **{f"observation.images.{cam}": feature(type=kind.VISUAL, shape=(3, *spec.image_hw)) for cam in spec.cameras},
    }
    cfg.output_features = {"action": feature(type=kind.ACTION, shape=(len(action_names),))}
    torch.manual_seed(spec.seed)
    with versions.quiet_stdout():
        policy = lr.WallXPolicy(cfg)
    if spec.mode == "fast":
        cfg.action_tokenizer_path = str(tokenizer_dir)
    stats = {"observation.state": _stats(len(spec.state_names), -0.5, 0.5),
             "action": _stats(len(action_names), -0.3, 0.3)}
    pre, post = lr.make_wall_x_pre_post_processors(cfg, dataset_stats=stats)
    policy.save_pretrained(str(out))
    pre.save_pretrained(str(out))
    post.save_pretrained(str(out))
    RobotMapping(state_names=tuple(spec.state_names), action_names=action_names, cameras=tuple(spec.cameras),
                 fps=spec.fps, robot_type=spec.robot_type).save(out)
    (out / CHECKPOINT_INFO_FILENAME).write_text(json.dumps({
        "random_weights": True,
        "note": _NOTE,
        "seed": spec.seed, "mode": spec.mode, "lerobot": ".".join(map(str, lr.version)),
    }, indent=2) + "\n")
    return out
