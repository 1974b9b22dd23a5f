"""LeRobot's WallX policy as wallx_ros uses it: the classes (``api``), the saved processor pipelines, the tokenizer,
the Qwen2.5-VL processor, and the hooks real-time chunking needs on the stock path. No LeRobot import until
``api()`` (or a function that calls it) runs.

====================================  ==========================  =====================================
topic                                 0.4.4                       0.6.x
====================================  ==========================  =====================================
processor pipelines                   saved ``policy_*processor.json``, same loader (``load_policy_processors``)
``preprocess_inputs``                 ``(batch)``                 ``(batch, *, compute_position_ids)``
Qwen2.5-VL processor                  image processor             + video processor
fast mode ``generate``                works                       needs ``patch_fast_generation``
stock flow integration (RTC)          module-level ``odeint`` of ``modeling_wall_x`` on both (``stock_flow_integrator``)
action normalisation (RTC)            ``UnnormalizerProcessorStep._normalize_action`` on both (``action_normaliser``)
====================================  ==========================  =====================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from wallx_ros.lerobot.generation import patch_prepare_inputs_for_generation
from wallx_ros.lerobot.versions import (
    fast_generation_patch_needed,
    lerobot_version,
    prepare_runtime,
    quiet_stdout,
    transformers_version,
)

__all__ = [
    "LeRobotApi",
    "action_normaliser",
    "api",
    "camera_view_names",
    "load_policy_processors",
    "make_qwen_processor",
    "patch_fast_generation",
    "preprocess_inputs",
    "preprocessor_passes_images_through",
    "prompt_token_room",
    "registered_processor_steps",
    "stock_flow_integrator",
    "tokenizer_control_tokens",
]


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
        patch_prepare_inputs_for_generation(Qwen2_5_VLMoEForAction)
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


def camera_view_names(camera_keys: list[str]) -> list[str]:
    """How WallX's prompt names each camera (``face_view`` -> "front view", as LeRobot's ``img_key_mapping``;
    the same function on both lines): the subtask prompt names the views as the action prompt does."""
    api()
    from lerobot.policies.wall_x.utils import img_key_mapping

    return [str(name) for name in img_key_mapping(list(camera_keys))]


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


def patch_fast_generation() -> bool:
    """Apply the fast-mode generation fix if this version pair needs it (idempotent); return whether it is on."""
    if not fast_generation_patch_needed():
        return False
    patch_prepare_inputs_for_generation(api().Qwen2_5_VLMoEForAction)
    return True


# -- real-time chunking on the stock path ------------------------------------------------------------------
@contextlib.contextmanager
def stock_flow_integrator(integrate: Any) -> Iterator[None]:
    """Within the block, LeRobot's stock WallX flow (``Qwen2_5_VLMoEForAction.predict``, diffusion mode) integrates
    with ``integrate(func, y0, times)`` instead of ``torchdiffeq.odeint(func, y0, times, method="euler")``: the
    stepping loop becomes ours (real-time chunking guides each step) while the velocity function stays stock's.
    Both lines call the module-level name ``odeint`` of ``modeling_wall_x`` exactly once per chunk. Not for
    concurrent use from several threads (one inference worker owns the model)."""
    api()
    from lerobot.policies.wall_x import modeling_wall_x

    original = modeling_wall_x.odeint

    def odeint(func: Any, y0: Any, t: Any, *args: Any, method: str | None = None, **kwargs: Any) -> Any:
        if args or kwargs or method != "euler":
            raise RuntimeError(f"stock WallX integrates its flow differently than wallx_ros knows (method {method!r},"
                               f" extra arguments {list(kwargs)}): real-time chunking cannot guide it")
        return integrate(func, y0, t)

    modeling_wall_x.odeint = odeint
    try:
        yield
    finally:
        modeling_wall_x.odeint = original


def action_normaliser(postprocessor: Any) -> tuple[Any, str | None]:
    """(normalise, None): a function mapping post-processed actions (a float32 tensor on the model's device, action
    dims) back to the model's output space, i.e. the exact inverse of the post-processor's action path; or
    (None, reason) when the post-processor does something to actions this does not invert.

    The post-processor of a WallX policy is LeRobot's ``UnnormalizerProcessorStep`` (+ a device move). Its own
    forward transform (``_normalize_action(..., inverse=False)``: same stats, eps and modes MEAN_STD / MIN_MAX /
    QUANTILES / QUANTILE10) is the inverse; it must see the dtype and device the model's output has (the step
    converts its stats to the dtype of what it is given and keeps them)."""
    normalisers = []
    for step in getattr(postprocessor, "steps", []):
        name = type(step).__name__
        if name == "UnnormalizerProcessorStep" and hasattr(step, "_normalize_action"):
            normalisers.append(step)
        elif name != "DeviceProcessorStep":
            return None, f"the post-processor has a step {name} that real-time chunking cannot invert"
    if len(normalisers) > 1:
        return None, "the post-processor un-normalises actions twice"
    if not normalisers:
        return (lambda actions: actions), None
    step = normalisers[0]
    return (lambda actions: step._normalize_action(actions, inverse=False)), None


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
