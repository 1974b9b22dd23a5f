"""The bottom layer that talks to LeRobot: the ONLY package in wallx_ros that imports ``lerobot``, and the place
where LeRobot lines differ. It imports no other wallx_ros package but ``core``; policy, dataset, cli and
bench code go through the names below, so a new LeRobot line means editing this package only. Every
heavy import (torch, transformers, LeRobot) happens on first use.

Modules (one concern each):

- ``versions``: installed versions and line (``installed_line``), ``prepare_runtime`` (offline mode, the
  torchvision shim), the rules that differ by line (backbone weights, fast-mode prompt ids, fast generation
  fix needed, flow-engine validated lines), ``quiet_stdout``.
- ``wallx_model``: LeRobot's WallX classes (``api``), processor pipelines, tokenizer, Qwen2.5-VL processor,
  the fast-generation fix, the stock-path hooks of real-time chunking.
- ``generation``: text generation (fast mode) internals: the ``generate`` fix and decode-step outputs.
- ``internals``: ``WallXInternals`` and stock comparisons for the fast flow engine.
- ``datasets``: ``LeRobotDataset`` create / open / load / save, video encoder settings, spool-encoder hooks.
- ``training``: ``run_lerobot_train`` (``lerobot-train`` in this process).
- ``errors``: ``LeRobotError`` and its subclasses.

Supported lines: LeRobot 0.4.4 (WALL-OSS's own pin; transformers 4.49, Python 3.11, the ``kilted`` stack)
and 0.6.x (transformers 5.4-5.5, Python >= 3.12, the ``jazzy`` stack). What differs, and where:

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
stock flow integration (RTC)          module-level ``odeint`` of ``modeling_wall_x`` on both (``stock_flow_integrator``)
action normalisation (RTC)            ``UnnormalizerProcessorStep._normalize_action`` on both (``action_normaliser``)
====================================  ==========================  =====================================
"""

from __future__ import annotations

from wallx_ros.lerobot.datasets import (
    SVT_AV1_LOG_LEVEL,
    create_dataset,
    dataset_cache_files,
    default_video_backend,
    load_dataset,
    open_dataset,
    preload_dataset_api,
    quiet_video_encoder,
    save_episode,
    spool_video_encoding,
    stop_image_writer,
    use_spool_encoder,
)
from wallx_ros.lerobot.errors import (
    BackboneWeightsMissingError,
    LeRobotError,
)
from wallx_ros.lerobot.generation import (
    cached_layer_kv,
    fast_decode_output,
    generation_output,
    generation_prefill,
    patch_prepare_inputs_for_generation,
)
from wallx_ros.lerobot.internals import (
    WallXInternals,
    flow_steps,
    stock_attention_mask,
    vision_tower_forward,
    vision_tower_output,
    wallx_internals,
)
from wallx_ros.lerobot.training import (
    run_lerobot_train,
)
from wallx_ros.lerobot.versions import (
    BACKBONE_WEIGHTS_FILENAME,
    FLOW_ENGINE_VALIDATED_LINES,
    backbone_weights_required,
    check_backbone_dir,
    fast_generation_patch_needed,
    fast_mode_needs_qwen_token_ids,
    flow_engine_unsupported_reason,
    installed_line,
    lerobot_version,
    prepare_runtime,
    quiet_stdout,
    transformers_version,
)
from wallx_ros.lerobot.wallx_model import (
    LeRobotApi,
    action_normaliser,
    api,
    camera_view_names,
    load_policy_processors,
    make_qwen_processor,
    patch_fast_generation,
    preprocess_inputs,
    preprocessor_passes_images_through,
    prompt_token_room,
    registered_processor_steps,
    stock_flow_integrator,
    tokenizer_control_tokens,
)

__all__ = [
    "BACKBONE_WEIGHTS_FILENAME",
    "FLOW_ENGINE_VALIDATED_LINES",
    "SVT_AV1_LOG_LEVEL",
    "BackboneWeightsMissingError",
    "LeRobotApi",
    "LeRobotError",
    "WallXInternals",
    "action_normaliser",
    "api",
    "backbone_weights_required",
    "cached_layer_kv",
    "camera_view_names",
    "check_backbone_dir",
    "create_dataset",
    "dataset_cache_files",
    "default_video_backend",
    "fast_decode_output",
    "fast_generation_patch_needed",
    "fast_mode_needs_qwen_token_ids",
    "flow_engine_unsupported_reason",
    "flow_steps",
    "generation_output",
    "generation_prefill",
    "installed_line",
    "lerobot_version",
    "load_dataset",
    "load_policy_processors",
    "make_qwen_processor",
    "open_dataset",
    "patch_fast_generation",
    "patch_prepare_inputs_for_generation",
    "preload_dataset_api",
    "prepare_runtime",
    "preprocess_inputs",
    "preprocessor_passes_images_through",
    "prompt_token_room",
    "quiet_stdout",
    "quiet_video_encoder",
    "registered_processor_steps",
    "run_lerobot_train",
    "save_episode",
    "spool_video_encoding",
    "stock_attention_mask",
    "stock_flow_integrator",
    "stop_image_writer",
    "tokenizer_control_tokens",
    "transformers_version",
    "use_spool_encoder",
    "vision_tower_forward",
    "vision_tower_output",
    "wallx_internals",
]
