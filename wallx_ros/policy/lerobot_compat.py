"""The one module that imports LeRobot, and the place where LeRobot versions differ.

Supported lines: LeRobot 0.4.4 (WALL-OSS's own pin; transformers 4.49, Python 3.11, the ``kilted`` stack)
and 0.6.x (transformers 5.4-5.5, Python >= 3.12, the ``jazzy`` stack). Everything else in wallx_ros goes
through the functions here, so a new LeRobot line means editing this file only. Heavy imports happen on
first use. What differs, and where it is handled:

====================================  ==========================  =====================================
topic                                 0.4.4                       0.6.x
====================================  ==========================  =====================================
processor pipelines                   saved ``policy_*processor.json``, same loader (``load_policy_processors``)
``preprocess_inputs``                 ``(batch)``                 ``(batch, *, compute_position_ids)``
``LeRobotDataset`` codec argument     ``vcodec="..."``            ``rgb_encoder=RGBEncoderConfig(...)``
backbone ``model.safetensors``        optional (warns)            required (raises ``OSError``)
Qwen2.5-VL processor                  image processor             + video processor
fast mode prompt                      Qwen ids 151644/77091       tokenised ``<|im_start|>assistant``
fast mode ``generate``                works                       needs ``patch_fast_generation``
video decoding backend                torchcodec (+ FFmpeg)       pyav (no system FFmpeg needed)
``save_episode`` video encoding       in process                  ``parallel_encoding=False`` (no fork)
append to a dataset                   ``LeRobotDataset(...)``     ``LeRobotDataset.resume(...)``
image writer, streaming encoder       on the dataset              on ``dataset.writer``
fast flow engine internals            LeRobot's Qwen2.5-VL copy   transformers 5 Qwen2.5-VL (``wallx_internals``)
====================================  ==========================  =====================================
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from wallx_ros.policy.errors import CheckpointError

__all__ = [
    "BACKBONE_WEIGHTS_FILENAME",
    "FLOW_ENGINE_VALIDATED_LINES",
    "LeRobotApi",
    "WallXInternals",
    "api",
    "backbone_weights_required",
    "check_backbone_dir",
    "create_dataset",
    "dataset_cache_files",
    "default_video_backend",
    "fast_generation_patch_needed",
    "fast_mode_needs_qwen_token_ids",
    "flow_engine_unsupported_reason",
    "flow_steps",
    "installed_line",
    "lerobot_version",
    "load_dataset",
    "load_policy_processors",
    "make_qwen_processor",
    "open_dataset",
    "patch_fast_generation",
    "preload_dataset_api",
    "prepare_runtime",
    "preprocess_inputs",
    "preprocessor_passes_images_through",
    "prompt_token_room",
    "quiet_stdout",
    "registered_processor_steps",
    "run_lerobot_train",
    "save_episode",
    "stock_attention_mask",
    "stop_image_writer",
    "streaming_backlog",
    "streaming_dropped_frames",
    "tokenizer_control_tokens",
    "transformers_version",
    "vision_tower_forward",
    "vision_tower_output",
    "wallx_internals",
]

BACKBONE_WEIGHTS_FILENAME = "model.safetensors"


def prepare_runtime() -> None:
    """Make the process safe for offline LeRobot use. Idempotent; call before importing lerobot.

    * The hub is unreachable: force offline mode so nothing waits on network timeouts.
    * CPU torch + PyPI torchvision: torchvision's compiled ops link against CUDA torch and fail to load;
      ``import torchvision`` then dies on the missing ``torchvision::nms`` schema. Defining the schema
      first lets its pure-Python parts (transforms, used by LeRobot) import. CUDA torch builds (the
      jazzy stack's torch 2.11) load torchvision's ops normally and get no shim.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    _ensure_torchvision_importable()


def _ensure_torchvision_importable() -> None:
    import torch

    if torch.version.cuda is not None or importlib.util.find_spec("torchvision") is None:
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - present when torchvision's ops loaded or we ran before
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")  # type: ignore[no-untyped-call]
    for name in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):
            schema = f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
            lib.define(schema)  # type: ignore[no-untyped-call]
    _KEEP_ALIVE.append(lib)


_KEEP_ALIVE: list[Any] = []


def _dist_version(dist: str) -> tuple[int, int, int]:
    from importlib.metadata import version

    parts = [*version(dist).split("+")[0].split("."), "0", "0"][:3]
    return tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts)  # type: ignore[return-value]


@cache
def lerobot_version() -> tuple[int, int, int]:
    return _dist_version("lerobot")


@cache
def transformers_version() -> tuple[int, int, int]:
    return _dist_version("transformers")


def installed_line() -> str:
    """The supported LeRobot line installed here: ``"0.4"`` or ``"0.6"`` (checkpoint formats follow it)."""
    return "0.4" if lerobot_version() < (0, 5, 0) else "0.6"


@dataclass(frozen=True)
class LeRobotApi:
    """The LeRobot classes wallx_ros uses, resolved for the installed version."""

    version: tuple[int, int, int]
    PreTrainedConfig: Any
    WallXConfig: Any
    WallXPolicy: Any
    make_wall_x_pre_post_processors: Any
    PolicyProcessorPipeline: Any
    policy_action_to_transition: Any
    transition_to_policy_action: Any
    PolicyFeature: Any
    FeatureType: Any
    Qwen2_5_VLConfig: Any
    Qwen2_5_VLMoEForAction: Any
    wallx_constants: ModuleType


@cache
def api() -> LeRobotApi:
    """Import LeRobot's wall_x stack once (after ``prepare_runtime``; fast-mode generation fixed if needed)."""
    prepare_runtime()
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.wall_x import constant as wallx_constants
    from lerobot.policies.wall_x.configuration_wall_x import WallXConfig
    from lerobot.policies.wall_x.modeling_wall_x import Qwen2_5_VLMoEForAction, WallXPolicy

    # importing the processor module registers 'wall_x_task_processor', which saved pipelines name
    from lerobot.policies.wall_x.processor_wall_x import make_wall_x_pre_post_processors
    from lerobot.policies.wall_x.qwen_model.configuration_qwen2_5_vl import Qwen2_5_VLConfig
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    if fast_generation_patch_needed():
        _patch_prepare_inputs_for_generation(Qwen2_5_VLMoEForAction)
    return LeRobotApi(
        version=lerobot_version(),
        PreTrainedConfig=PreTrainedConfig,
        WallXConfig=WallXConfig,
        WallXPolicy=WallXPolicy,
        make_wall_x_pre_post_processors=make_wall_x_pre_post_processors,
        PolicyProcessorPipeline=PolicyProcessorPipeline,
        policy_action_to_transition=policy_action_to_transition,
        transition_to_policy_action=transition_to_policy_action,
        PolicyFeature=PolicyFeature,
        FeatureType=FeatureType,
        Qwen2_5_VLConfig=Qwen2_5_VLConfig,
        Qwen2_5_VLMoEForAction=Qwen2_5_VLMoEForAction,
        wallx_constants=wallx_constants,
    )


def load_policy_processors(policy_dir: Path, device: str) -> tuple[Any, Any]:
    """LeRobot's saved pre/post-processor pipelines of a policy folder, preprocessor moved to ``device``.

    Same files and loader on both lines (0.6 builds the steps with ``make_default_policy_processor_steps``
    but saves and reads the same ``policy_preprocessor.json`` / ``policy_postprocessor.json``).
    """
    lr = api()
    pre = lr.PolicyProcessorPipeline.from_pretrained(
        str(policy_dir), config_filename="policy_preprocessor.json",
        overrides={"device_processor": {"device": device}},
    )
    post = lr.PolicyProcessorPipeline.from_pretrained(
        str(policy_dir), config_filename="policy_postprocessor.json",
        to_transition=lr.policy_action_to_transition, to_output=lr.transition_to_policy_action,
    )
    return pre, post


def registered_processor_steps() -> frozenset[str]:
    """Names of the processor steps LeRobot registered (importing the wall_x stack registers its own)."""
    api()
    from lerobot.processor.pipeline import ProcessorStepRegistry

    return frozenset(ProcessorStepRegistry.list())


def tokenizer_control_tokens(policy: Any) -> frozenset[str]:
    """Every special / added token string of a WallX policy's text tokenizer (``<|image_pad|>``, ``<|action|>``,
    ``<|propri|>``, ``<|action_token_i|>``...): text containing one is tokenized to that control token."""
    tokenizer = policy.model.processor.tokenizer
    tokens = set(getattr(tokenizer, "added_tokens_encoder", {}) or {})
    tokens.update(getattr(tokenizer, "all_special_tokens", []) or [])
    return frozenset(t for t in tokens if t)


def prompt_token_room(policy: Any, batch: dict[str, Any]) -> int:
    """Tokens left for the instruction in WallX's prompt: LeRobot tokenizes images + state + instruction +
    action slots with ``truncation=True`` at ``TOKENIZER_MAX_LENGTH`` (768 in 0.4.4), so a long instruction
    silently cuts the action slots (then inference fails). ``batch``: a preprocessed batch whose task is ""."""
    limit = int(getattr(api().wallx_constants, "TOKENIZER_MAX_LENGTH", 768))
    with quiet_stdout():
        inputs = policy.preprocess_inputs(batch)
    return limit - int(inputs["input_ids"].shape[-1])

def preprocess_inputs(policy: Any, batch: dict[str, Any]) -> Any:
    """``WallXPolicy.preprocess_inputs``: model inputs (token ids, pixels, masks) of a preprocessed batch.

    0.6 added a keyword ``compute_position_ids`` (default False: positions are computed in the forward,
    as 0.4.4 always did); the call below means the same on both lines.
    """
    return policy.preprocess_inputs(batch)


def make_qwen_processor(image_processor_kwargs: dict[str, Any], tokenizer: Any) -> Any:
    """A Qwen2.5-VL processor (image processor + tokenizer) as this transformers version wants it.

    transformers 5 requires a video processor as well and saves everything as ``processor_config.json``;
    4.49 saves the image processor as ``preprocessor_config.json``.
    """
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor

    extra: dict[str, Any] = {}
    if transformers_version() >= (5, 0, 0):
        from transformers import Qwen2VLVideoProcessor  # type: ignore[attr-defined, unused-ignore]

        extra["video_processor"] = Qwen2VLVideoProcessor()
    image_processor = Qwen2VLImageProcessor(**image_processor_kwargs)
    return Qwen2_5_VLProcessor(  # type: ignore[no-untyped-call, unused-ignore]
        image_processor=image_processor, tokenizer=tokenizer, **extra)


class _Capture(io.StringIO):
    pass


@contextlib.contextmanager
def quiet_stdout() -> Iterator[io.StringIO]:
    """Capture LeRobot's ``print`` output (it prints load progress and load failures); yields the buffer."""
    buf = _Capture()
    with contextlib.redirect_stdout(buf):
        yield buf


def fast_mode_needs_qwen_token_ids() -> bool:
    """LeRobot 0.4.4's fast mode finds the answer by the hard-coded ids [151644, 77091]; 0.6 tokenises it."""
    return lerobot_version() < (0, 5, 0)


# -- the backbone model.safetensors rule ------------------------------------------------------------------
def backbone_weights_required() -> bool:
    """0.6 raises when the backbone folder has no ``model.safetensors``; 0.4.4 warned and kept random init.

    A policy folder's own ``model.safetensors`` holds every weight, so an EMPTY backbone file is enough
    (nothing is loaded from it). The tiny checkpoint and ``wallx-ros-convert-checkpoint --to 0.6`` write one.
    """
    return lerobot_version() >= (0, 5, 0)


def check_backbone_dir(backbone_dir: Path) -> None:
    """Raise a CheckpointError saying how to fix a backbone folder this LeRobot line cannot load."""
    weights = backbone_dir / BACKBONE_WEIGHTS_FILENAME
    if backbone_weights_required() and not weights.is_file():
        raise CheckpointError(
            f"{weights} is missing: LeRobot {'.'.join(map(str, lerobot_version()))} refuses a WALL-OSS backbone "
            "folder without model.safetensors (0.4.4 accepted it). If the policy folder was written by LeRobot "
            "0.4.x, convert it: wallx-ros-convert-checkpoint SRC DST --to 0.6"
        )


# -- fast mode: transformers >= 5.4 generate() and LeRobot 0.6's prepare_inputs_for_generation -------------
def fast_generation_patch_needed() -> bool:
    """True where stock fast mode fails: LeRobot 0.6's ``prepare_inputs_for_generation`` indexes
    ``cache_position``, which transformers >= 5.4's ``generate`` no longer passes (TypeError on None).
    LeRobot 0.4.4 with transformers 4.49 passes it and is left alone."""
    return lerobot_version() >= (0, 5, 0) and transformers_version() >= (5, 4, 0)


def patch_fast_generation() -> bool:
    """Apply the fast-mode generation fix if this version pair needs it (idempotent); return whether it is on."""
    if not fast_generation_patch_needed():
        return False
    _patch_prepare_inputs_for_generation(api().Qwen2_5_VLMoEForAction)
    return True


def _patch_prepare_inputs_for_generation(model_cls: Any) -> None:
    original = model_cls.prepare_inputs_for_generation
    if getattr(original, "_wallx_ros_cache_position", False):
        return

    @functools.wraps(original)  # keep the signature: generate() validates model kwargs against it
    def prepare_inputs_for_generation(self: Any, input_ids: Any, past_key_values: Any = None, *args: Any,
                                      cache_position: Any = None, **kwargs: Any) -> Any:
        if cache_position is None:
            import torch

            cached = int(past_key_values.get_seq_length()) if past_key_values is not None else 0
            length = int(input_ids.shape[1])
            # Positions of the tokens not yet in the cache. generate() hands over either the full sequence
            # (prompt + generated so far: cached..length-1) or only the new tokens (cached..cached+length-1).
            end = length if length > cached else cached + length
            cache_position = torch.arange(cached, end, device=input_ids.device)
        return original(self, input_ids, past_key_values, *args, cache_position=cache_position, **kwargs)

    prepare_inputs_for_generation._wallx_ros_cache_position = True  # type: ignore[attr-defined]
    model_cls.prepare_inputs_for_generation = prepare_inputs_for_generation


def fast_decode_output(logits: Any, past_key_values: Any, rope_deltas: Any) -> Any:
    """The output object WallX's forward returns to ``generate`` (what ``fast_decode``'s step returns)."""
    prepare_runtime()
    from lerobot.policies.wall_x.qwen_model.qwen2_5_vl_moe import Qwen2_5_VLACausalLMOutputWithPast

    return Qwen2_5_VLACausalLMOutputWithPast(logits=logits, past_key_values=past_key_values, rope_deltas=rope_deltas)


def cached_layer_kv(cache: Any, index: int) -> tuple[Any, Any]:
    """(keys, values) a transformers ``DynamicCache`` holds for layer ``index`` (transformers 5: per-layer
    objects; 4.x: per-kind lists)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return layers[index].keys, layers[index].values
    return cache.key_cache[index], cache.value_cache[index]


# -- the fast flow engine (wallx_ros.policy.flow_engine) --------------------------------------------------
@dataclass(frozen=True)
class WallXInternals:
    """LeRobot WallX functions and constants the fast flow engine and fast_decode re-use (they re-implement none).

    The engine calls the loaded policy's own modules (projections, norms, experts, action head, vision
    blocks) and these helpers; only the glue between them (KV-cache reuse, static shapes) is its own.
    Where the two lines compute differently, the field says how this line's stock code does it:

    ==============================  ===============================  ======================================
    field                           0.4.4 (LeRobot's own Qwen copy)  0.6.x (transformers 5 native Qwen)
    ==============================  ===============================  ======================================
    ``attention_scale_multiplies``  ``qk / sqrt(head_dim)``          ``qk * attn.scaling``
    ``vision_chunk_attention``      None: one masked eager op        sdpa per window / image (``split``)
    ``resize_image``                None: Pillow BICUBIC             LeRobot's torchvision BICUBIC+antialias
    ``proprioception_proj``         ``use_history`` keyword          no ``use_history``
    ``mrope_section``               ``config.rope_scaling``          ``text_config.rope_parameters``
    ``sliding_window``              whenever set                     per ``layer_types``
    ``image_pixel_limits``          ``min_pixels``/``max_pixels``    ``size.shortest_edge/longest_edge``
    ==============================  ===============================  ======================================
    """

    rotate_half: Any
    apply_rotary_pos_emb_vision: Any
    repeat_kv: Any
    get_wallx_normal_text: Any
    process_grounding_points: Any
    replace_action_token: Any
    preprocesser_call: Any
    smart_resize: Any
    resolution: int
    image_factor: int
    min_pixels: int
    max_pixels: int
    priority_order: Any
    generate_subtask_ratio: float
    model_type: str
    tokenizer_max_length: int
    flow_steps: int
    attention_scale_multiplies: bool
    vision_chunk_attention: Any
    resize_image: Any
    proprioception_proj: Any
    mrope_section: Any
    sliding_window: Any
    image_pixel_limits: Any

    def eager_attention(self, q: Any, k: Any, v: Any, attn: Any, head_dim: int, mask: Any = None) -> Any:
        """Stock's eager attention core, op for op on this line: scaled scores (+ additive mask), float32
        softmax cast back to q's dtype, times v. (batch, heads, q_len, head_dim) -> same; k/v already repeated."""
        import math

        import torch

        scores = torch.matmul(q, k.transpose(2, 3))
        # transformers 5 (LeRobot 0.6) multiplies by attn.scaling; LeRobot 0.4.4 divides by sqrt(head_dim)
        weights = scores * attn.scaling if self.attention_scale_multiplies else scores / math.sqrt(head_dim)
        if mask is not None:
            weights = weights + mask
        weights = torch.nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(weights, v)


@cache
def flow_steps() -> int:
    """Flow-matching integration steps of LeRobot's WallX ``predict`` (its default; 10 on 0.4.4 and 0.6.1)."""
    import inspect

    prepare_runtime()
    from lerobot.policies.wall_x.modeling_wall_x import Qwen2_5_VLMoEForAction

    steps = inspect.signature(Qwen2_5_VLMoEForAction.predict).parameters["num_inference_timesteps"].default
    return int(steps if steps is not None else 10)


def _proprioception_proj_04(head: Any, proprioception: Any, mask: Any) -> Any:
    return head.proprioception_proj(proprioception, mask, use_history=proprioception.shape[1] > 1)


def _proprioception_proj_06(head: Any, proprioception: Any, mask: Any) -> Any:
    return head.proprioception_proj(proprioception, mask)


def _mrope_section_04(config: Any) -> list[int]:
    return list(config.rope_scaling["mrope_section"])


def _mrope_section_06(config: Any) -> list[int]:
    return list(config.text_config.rope_parameters["mrope_section"])


def _sliding_window_04(config: Any) -> int | None:
    """0.4.4's mask applies ``config.sliding_window`` whenever it is set."""
    window = getattr(config, "sliding_window", None)
    return None if window is None else int(window)


def _sliding_window_06(config: Any) -> int | None:
    """0.6 (transformers 5) applies a sliding window only to layers of type ``sliding_attention``."""
    text = config.text_config
    kinds = set(getattr(text, "layer_types", None) or ["full_attention"])
    if kinds == {"full_attention"}:
        return None
    if kinds == {"sliding_attention"} and text.sliding_window is not None:
        return int(text.sliding_window)
    raise ValueError(f"decoder layers of mixed attention types {sorted(kinds)} are not supported by fast_flow")


def _image_pixel_limits_04(image_processor: Any) -> tuple[int, int]:
    return int(image_processor.min_pixels), int(image_processor.max_pixels)


def _image_pixel_limits_06(image_processor: Any) -> tuple[int, int]:
    size = image_processor.size
    return int(size.shortest_edge), int(size.longest_edge)


def _resize_image_06(image: Any) -> Any:
    """One camera image (h, w, 3) uint8 through 0.6's own resize (``_resize_wall_x_image_batch``: torchvision
    BICUBIC with antialias, on the image's device, as a batch of one in the layout stock gets), (h', w', 3)."""
    from lerobot.policies.wall_x.modeling_wall_x import _resize_wall_x_image_batch

    resized, _ = _resize_wall_x_image_batch(image.permute(2, 0, 1).unsqueeze(0))
    return resized[0].permute(1, 2, 0)


@cache
def wallx_internals() -> WallXInternals:
    """The WallX internals of the installed LeRobot line (0.4.4: LeRobot's own Qwen2.5-VL copy; 0.6: the
    transformers 5 modules WallX was rebuilt on)."""
    prepare_runtime()
    from lerobot.policies.wall_x import constant
    from lerobot.policies.wall_x.utils import (
        get_wallx_normal_text,
        preprocesser_call,
        process_grounding_points,
        replace_action_token,
    )
    from qwen_vl_utils.vision_process import smart_resize

    line_04 = installed_line() == "0.4"
    if line_04:
        from lerobot.policies.wall_x.qwen_model import qwen2_5_vl_moe as qwen

        line: dict[str, Any] = {
            "attention_scale_multiplies": False, "vision_chunk_attention": None, "resize_image": None,
            "proprioception_proj": _proprioception_proj_04, "mrope_section": _mrope_section_04,
            "sliding_window": _sliding_window_04, "image_pixel_limits": _image_pixel_limits_04,
        }
    else:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

        line = {
            "attention_scale_multiplies": True, "vision_chunk_attention": sdpa_attention_forward,
            "resize_image": _resize_image_06, "proprioception_proj": _proprioception_proj_06,
            "mrope_section": _mrope_section_06, "sliding_window": _sliding_window_06,
            "image_pixel_limits": _image_pixel_limits_06,
        }
    return WallXInternals(
        rotate_half=qwen.rotate_half,
        apply_rotary_pos_emb_vision=qwen.apply_rotary_pos_emb_vision,
        repeat_kv=qwen.repeat_kv,
        get_wallx_normal_text=get_wallx_normal_text,
        process_grounding_points=process_grounding_points,
        replace_action_token=replace_action_token,
        preprocesser_call=preprocesser_call,
        smart_resize=smart_resize,
        resolution=int(constant.RESOLUTION),
        image_factor=int(constant.IMAGE_FACTOR),
        min_pixels=int(constant.MIN_PIXELS),
        max_pixels=int(constant.MAX_PIXELS),
        priority_order=constant.PRIORITY_ORDER,
        generate_subtask_ratio=float(constant.GENERATE_SUBTASK_RATIO),
        model_type=str(constant.MODEL_TYPE),
        tokenizer_max_length=int(constant.TOKENIZER_MAX_LENGTH),
        flow_steps=flow_steps(),
        **line,
    )


def vision_tower_forward(visual: Any, pixel_values: Any, grid_thw: Any) -> Any:
    """Stock ``visual(pixel_values, grid_thw)``: the merged image embeddings (0.6 returns them as
    ``pooler_output`` of a model output)."""
    out = visual(pixel_values, grid_thw)
    return out if installed_line() == "0.4" else out.pooler_output


def vision_tower_output(merged: Any) -> Any:
    """What stock ``visual(pixel_values, grid_thw)`` returns for the merged image embeddings ``merged`` (the
    inverse of ``vision_tower_forward``): 0.4.4 the tensor itself, 0.6 a model output whose ``pooler_output``
    stock reads (its ``last_hidden_state``, the unmerged states, is not read by WallX and left None)."""
    if installed_line() == "0.4":
        return merged
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    return BaseModelOutputWithPooling(pooler_output=merged)


def stock_attention_mask(model: Any, input_ids: Any, inputs_embeds: Any, action_tokens: Any) -> Any:
    """The additive 4-D attention mask stock WallX's text model builds for one unpadded prompt whose action
    tokens are ``action_tokens`` (bool, like ``input_ids``): 0 where attention is allowed."""
    import torch

    lm = model.model
    ones = torch.ones_like(input_ids)
    if installed_line() == "0.4":
        positions = torch.arange(input_ids.shape[1])
        return lm._update_causal_mask(ones, inputs_embeds, positions, None, False, action_tokens)
    from transformers.masking_utils import create_causal_mask

    return create_causal_mask(config=lm.config, inputs_embeds=inputs_embeds, attention_mask=ones,
                              past_key_values=None, or_mask_function=lm._action_island_mask(action_tokens))


def preprocessor_passes_images_through(preprocessor: Any) -> str | None:
    """None if LeRobot's preprocessor leaves camera images untouched (no rename, identity normalisation),
    else the reason why not. The fast flow engine feeds images to the model itself and needs this."""
    lr = api()
    for step in getattr(preprocessor, "steps", []):
        rename = getattr(step, "rename_map", None)
        if rename:
            return f"the preprocessor renames features ({rename})"
        norm_map = getattr(step, "norm_map", None)
        if norm_map is not None:
            mode = norm_map.get(lr.FeatureType.VISUAL)
            if mode is not None and str(getattr(mode, "value", mode)).upper() != "IDENTITY":
                return f"the preprocessor normalises images ({mode})"
    return None


# LeRobot lines on which the fast flow engine was validated: bit-identical actions to stock with eager attention
# on CPU (test/test_flow_engine.py, test/test_vision_tower.py on the tiny checkpoints)
FLOW_ENGINE_VALIDATED_LINES = ((0, 4), (0, 6))


def flow_engine_unsupported_reason() -> str | None:
    """None if the fast flow engine was validated against the installed LeRobot line, else why not.

    Validated: LeRobot 0.4.x and 0.6.x (``FLOW_ENGINE_VALIDATED_LINES``). A new line keeps its WallX modules
    under other names/signatures: map them in ``wallx_internals`` and validate with test/test_flow_engine.py
    before adding it here.
    """
    if lerobot_version()[:2] not in FLOW_ENGINE_VALIDATED_LINES:
        lines = " and ".join(f"{major}.{minor}.x" for major, minor in FLOW_ENGINE_VALIDATED_LINES)
        return (f"fast_flow is validated on LeRobot {lines} only "
                f"(installed: {'.'.join(map(str, lerobot_version()))})")
    return None


# -- datasets (LeRobotDataset v3) ------------------------------------------------------------------------
def _dataset_class() -> Any:
    prepare_runtime()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset


def preload_dataset_api() -> None:
    """Import LeRobot's dataset stack now (seconds) rather than at the first episode."""
    _dataset_class()


def _encoder_kwargs(method: Any, vcodec: str | None, streaming_encoding: bool,
                    encoder_queue_frames: int = 0) -> dict[str, Any]:
    """Video-encoder keyword arguments as this LeRobot's ``create``/``__init__`` spells them."""
    import inspect

    params = inspect.signature(method).parameters
    kwargs: dict[str, Any] = {}
    if vcodec:
        if "vcodec" in params:  # 0.4.x
            kwargs["vcodec"] = vcodec
        elif "rgb_encoder" in params:  # 0.6.x
            from lerobot.configs import RGBEncoderConfig

            kwargs["rgb_encoder"] = RGBEncoderConfig(vcodec=vcodec)
        else:
            raise TypeError(f"this LeRobot ({lerobot_version()}) takes no video codec setting")
    if streaming_encoding:
        if "streaming_encoding" not in params:
            raise TypeError(f"this LeRobot ({lerobot_version()}) has no streaming video encoding")
        kwargs["streaming_encoding"] = True
        if encoder_queue_frames and "encoder_queue_maxsize" in params:
            kwargs["encoder_queue_maxsize"] = encoder_queue_frames
    return kwargs


def create_dataset(*, repo_id: str, root: Path, fps: int, features: dict[str, Any], robot_type: str,
                   use_videos: bool, vcodec: str | None = None, image_writer_threads: int = 0,
                   streaming_encoding: bool = False, encoder_queue_frames: int = 0) -> Any:
    """``LeRobotDataset.create`` (``root`` must not exist yet)."""
    cls = _dataset_class()
    return cls.create(repo_id=repo_id, fps=fps, features=features, root=root, robot_type=robot_type,
                      use_videos=use_videos, image_writer_threads=image_writer_threads,
                      **_encoder_kwargs(cls.create, vcodec, streaming_encoding, encoder_queue_frames))


@contextlib.contextmanager
def _datasets_cache(cache_dir: Path | None) -> Any:
    """Point Hugging Face ``datasets``' parquet->arrow cache at ``cache_dir`` for the block (None: unchanged)."""
    if cache_dir is None:
        yield
        return
    import datasets

    previous = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = Path(cache_dir)
    try:
        yield
    finally:
        datasets.config.HF_DATASETS_CACHE = previous


def open_dataset(*, repo_id: str, root: Path, vcodec: str | None = None, image_writer_threads: int = 0,
                 streaming_encoding: bool = False, encoder_queue_frames: int = 0,
                 cache_dir: Path | None = None) -> Any:
    """An existing local dataset opened to append episodes (LeRobot's resume path: new episodes go to new
    data, meta and video files). ``cache_dir`` receives the arrow cache ``datasets`` builds on load.

    0.4.4 appends through ``LeRobotDataset(repo_id, root)`` + ``start_image_writer``; 0.6 opens that read-only
    and appends through ``LeRobotDataset.resume(...)`` (which loads no frames until they are read).
    """
    cls = _dataset_class()
    if lerobot_version() >= (0, 5, 0):
        with _datasets_cache(cache_dir):
            return cls.resume(repo_id, root=root, image_writer_threads=image_writer_threads,
                              **_encoder_kwargs(cls.resume, vcodec, streaming_encoding, encoder_queue_frames))
    with _datasets_cache(cache_dir):
        ds = cls(repo_id, root=root,
                 **_encoder_kwargs(cls.__init__, vcodec, streaming_encoding, encoder_queue_frames))
    if image_writer_threads:
        ds.start_image_writer(num_processes=0, num_threads=image_writer_threads)
    return ds


def stop_image_writer(dataset: Any) -> None:
    """Stop a dataset's background image writer (0.6 keeps it on ``dataset.writer``). No-op without one."""
    owner = dataset.writer if lerobot_version() >= (0, 5, 0) else dataset
    if owner is not None:
        owner.stop_image_writer()


def dataset_cache_files(dataset: Any) -> list[Path]:
    """Arrow cache files the loaded dataset memory-maps (to prune stale caches next to them). A 0.6 dataset
    opened to append has loaded nothing (its reader is created on first read): none."""
    if lerobot_version() >= (0, 5, 0):
        reader = getattr(dataset, "reader", None)
        hf = getattr(reader, "hf_dataset", None) if reader is not None else None
    else:
        hf = getattr(dataset, "hf_dataset", None)
    return [Path(f["filename"]) for f in getattr(hf, "cache_files", [])]


def load_dataset(repo_id: str, root: Path, *, episodes: list[int] | None = None,
                 delta_timestamps: dict[str, list[float]] | None = None, video_backend: str | None = None) -> Any:
    """A local dataset opened for reading (frames, decoded video, ``meta``); ``video_backend`` None = the
    backend that decodes on CPU with this line (``default_video_backend()``)."""
    cls = _dataset_class()
    return cls(repo_id, root=root, episodes=episodes, delta_timestamps=delta_timestamps,
               video_backend=video_backend or default_video_backend())


def save_episode(dataset: Any) -> None:
    """``dataset.save_episode()``, encoding videos in this process: LeRobot's parallel encoding forks a
    process pool, which is unsafe in a process that runs DDS threads (a node)."""
    import inspect

    if "parallel_encoding" in inspect.signature(dataset.save_episode).parameters:
        dataset.save_episode(parallel_encoding=False)
    else:
        dataset.save_episode()


def streaming_dropped_frames(dataset: Any) -> int:
    """Frames LeRobot's streaming video encoder dropped in the open episode (it drops when it falls
    behind, and the video then no longer matches the data). 0 without streaming encoding.
    (0.6 keeps the encoder on ``dataset.writer``.)"""
    owner = getattr(dataset, "writer", None) if lerobot_version() >= (0, 5, 0) else dataset
    encoder = getattr(owner, "_streaming_encoder", None)
    return int(sum(getattr(encoder, "_dropped_frames", {}).values())) if encoder is not None else 0


def run_lerobot_train(argv: list[str]) -> None:
    """LeRobot's training entry point (what ``lerobot-train ARGS`` runs), in this process, after two
    fixes the stock console script lacks: ``prepare_runtime`` (it cannot start on CPU-only torch with
    PyPI torchvision: ``operator torchvision::nms does not exist``) and importing the wall_x stack,
    whose saved processor steps are not registered otherwise (``--policy.path=<wall_x checkpoint>``
    fails with "Processor step 'wall_x_task_processor' not found in registry")."""
    import sys

    api()
    from lerobot.scripts import lerobot_train

    saved = sys.argv
    sys.argv = ["lerobot-train", *argv]
    try:
        lerobot_train.main()
    finally:
        sys.argv = saved

def default_video_backend() -> str:
    """The video decoding backend that works on CPU with this line.

    0.4.4: ``torchcodec`` (0.13, needs the system FFmpeg libraries; its ``pyav`` path is broken with
    torchvision >= 0.26). 0.6: ``pyav`` (PyAV's own bundled FFmpeg, no system libraries needed).
    """
    return "torchcodec" if lerobot_version() < (0, 5, 0) else "pyav"


def streaming_backlog(dataset: Any) -> int:
    """Frames waiting in LeRobot's streaming video encoder (the fullest camera queue); 0 without streaming.
    An offline producer (the bag converter) waits on this instead of letting the encoder drop frames.
    (0.6 keeps the encoder on ``dataset.writer``.)"""
    owner = getattr(dataset, "writer", None) if lerobot_version() >= (0, 5, 0) else dataset
    encoder = getattr(owner, "_streaming_encoder", None)
    queues = getattr(encoder, "_frame_queues", None) or {}
    return max((q.qsize() for q in queues.values()), default=0)
