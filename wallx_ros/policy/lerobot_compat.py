"""The one module that imports LeRobot, and the place where LeRobot versions differ.

Supported lines: LeRobot 0.4.4 (WALL-OSS's own pin; transformers 4.49) and 0.6.x (transformers 5).
Everything else in wallx_ros goes through the functions here, so a new LeRobot line means editing
this file only. Heavy imports happen on first use.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "LeRobotApi",
    "WallXInternals",
    "api",
    "create_dataset",
    "dataset_cache_files",
    "flow_engine_unsupported_reason",
    "lerobot_version",
    "load_dataset",
    "load_policy_processors",
    "open_dataset",
    "preload_dataset_api",
    "prepare_runtime",
    "preprocessor_passes_images_through",
    "prompt_token_room",
    "quiet_stdout",
    "registered_processor_steps",
    "run_lerobot_train",
    "save_episode",
    "streaming_backlog",
    "streaming_dropped_frames",
    "tokenizer_control_tokens",
    "wallx_internals",
]


def prepare_runtime() -> None:
    """Make the process safe for offline LeRobot use. Idempotent; call before importing lerobot.

    * The hub is unreachable: force offline mode so nothing waits on network timeouts.
    * CPU torch + PyPI torchvision: torchvision's compiled ops link against CUDA torch and fail to load;
      ``import torchvision`` then dies on the missing ``torchvision::nms`` schema. Defining the schema
      first lets its pure-Python parts (transforms, used by LeRobot) import.
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


@cache
def lerobot_version() -> tuple[int, int, int]:
    from importlib.metadata import version

    parts = [*version("lerobot").split("+")[0].split("."), "0", "0"][:3]
    return tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts)  # type: ignore[return-value]


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
    """Import LeRobot's wall_x stack once (after ``prepare_runtime``)."""
    prepare_runtime()
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.wall_x import constant as wallx_constants
    from lerobot.policies.wall_x.configuration_wall_x import WallXConfig
    from lerobot.policies.wall_x.modeling_wall_x import Qwen2_5_VLMoEForAction, WallXPolicy
    from lerobot.policies.wall_x.processor_wall_x import make_wall_x_pre_post_processors
    from lerobot.policies.wall_x.qwen_model.configuration_qwen2_5_vl import Qwen2_5_VLConfig
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

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
    """LeRobot's saved pre/post-processor pipelines of a policy folder, preprocessor moved to ``device``."""
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


def make_qwen_processor(image_processor_kwargs: dict[str, Any], tokenizer: Any) -> Any:
    """A Qwen2.5-VL processor (image processor + tokenizer) as this transformers version wants it."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor

    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**image_processor_kwargs), tokenizer=tokenizer)


class _Capture(io.StringIO):
    pass


@contextlib.contextmanager
def quiet_stdout() -> Any:
    """Capture LeRobot's ``print`` output (it prints load progress and load failures); yields the buffer."""
    buf = _Capture()
    with contextlib.redirect_stdout(buf):
        yield buf


def fast_mode_needs_qwen_token_ids() -> bool:
    """LeRobot 0.4.4's fast mode finds the answer by the hard-coded ids [151644, 77091]."""
    return lerobot_version() < (0, 5, 0)


# -- the fast flow engine (wallx_ros.policy.flow_engine) --------------------------------------------------
@dataclass(frozen=True)
class WallXInternals:
    """LeRobot WallX functions and constants the fast flow engine re-uses (it re-implements none of them).

    The engine calls the loaded policy's own modules (projections, norms, experts, action head, vision
    blocks) and these helpers; only the glue between them (KV-cache reuse, static shapes) is its own.
    """

    apply_multimodal_rotary_pos_emb: Any
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


@cache
def wallx_internals() -> WallXInternals:
    """The WallX internals of the installed LeRobot (0.4.4 layout)."""
    import inspect

    prepare_runtime()
    from lerobot.policies.wall_x import constant
    from lerobot.policies.wall_x.modeling_wall_x import Qwen2_5_VLMoEForAction
    from lerobot.policies.wall_x.qwen_model import qwen2_5_vl_moe as qwen
    from lerobot.policies.wall_x.utils import (
        get_wallx_normal_text,
        preprocesser_call,
        process_grounding_points,
        replace_action_token,
    )
    from qwen_vl_utils.vision_process import smart_resize

    steps = inspect.signature(Qwen2_5_VLMoEForAction.predict).parameters["num_inference_timesteps"].default
    return WallXInternals(
        apply_multimodal_rotary_pos_emb=qwen.apply_multimodal_rotary_pos_emb,
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
        flow_steps=int(steps if steps is not None else 10),
    )


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


def flow_engine_unsupported_reason() -> str | None:
    """None if the fast flow engine was validated against the installed LeRobot line, else why not.

    Validated (equal actions to stock, tests on the tiny checkpoint): LeRobot 0.4.x. Other lines keep
    their WallX modules under other names/signatures (transformers 5): map them in ``wallx_internals``
    and validate with test/test_flow_engine.py before adding them here.
    """
    if lerobot_version()[:2] != (0, 4):
        return f"fast_flow is validated on LeRobot 0.4.x only (installed: {'.'.join(map(str, lerobot_version()))})"
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
    data, meta and video files). ``cache_dir`` receives the arrow cache ``datasets`` builds on load."""
    cls = _dataset_class()
    with _datasets_cache(cache_dir):
        ds = cls(repo_id, root=root,
                 **_encoder_kwargs(cls.__init__, vcodec, streaming_encoding, encoder_queue_frames))
    if image_writer_threads:
        ds.start_image_writer(num_processes=0, num_threads=image_writer_threads)
    return ds


def dataset_cache_files(dataset: Any) -> list[Path]:
    """Arrow cache files the loaded dataset memory-maps (to prune stale caches next to them)."""
    hf = getattr(dataset, "hf_dataset", None)
    return [Path(f["filename"]) for f in getattr(hf, "cache_files", [])]


def load_dataset(repo_id: str, root: Path, *, episodes: list[int] | None = None,
                 delta_timestamps: dict[str, list[float]] | None = None, video_backend: str | None = None) -> Any:
    """A local dataset opened for reading (frames, decoded video, ``meta``)."""
    cls = _dataset_class()
    return cls(repo_id, root=root, episodes=episodes, delta_timestamps=delta_timestamps,
               video_backend=video_backend)


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
    behind, and the video then no longer matches the data). 0 without streaming encoding."""
    encoder = getattr(dataset, "_streaming_encoder", None)
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


def streaming_backlog(dataset: Any) -> int:
    """Frames waiting in LeRobot's streaming video encoder (the fullest camera queue); 0 without streaming.
    An offline producer (the bag converter) waits on this instead of letting the encoder drop frames."""
    encoder = getattr(dataset, "_streaming_encoder", None)
    queues = getattr(encoder, "_frame_queues", None) or {}
    return max((q.qsize() for q in queues.values()), default=0)
