"""Model inputs for the fast flow engine: the tensors ``WallXPolicy.preprocess_inputs`` makes, made cheaply.

Stock LeRobot rebuilds, for every chunk, the prompt text, runs the tokenizer, computes the 3-D rotary
positions with Python loops, and moves every camera image device -> host -> PIL -> two bicubic
resizes -> image processor -> device. Here:

* everything that depends only on the prompt and the image sizes (token ids, rotary positions, the
  positions of image / proprioception / action tokens, the attention pattern, the token embeddings
  of the text) is computed once per (instruction, camera sizes) with LeRobot's own text functions,
  tokenizer and ``get_rope_index``, and kept on the device (``PromptPlan``);
* camera images go up once as uint8 (pinned host buffers, asynchronous copies on CUDA) and are
  resized (Pillow-exact, ``pil_resize``), normalised and cut into patches on the device (with
  ``images_only`` later, by the flow engine inside its CUDA graph: no per-chunk kernel launches for it);
* the state goes through LeRobot's own preprocessor pipeline (normalisation), as in stock.

The result is bit-identical to ``preprocess_inputs`` (tested on CPU).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wallx_ros.core.types import Observation
from wallx_ros.lerobot import internals, versions
from wallx_ros.policy.engine.pil_resize import PilBicubicResizer
from wallx_ros.policy.engine.vision_tower import Grid
from wallx_ros.policy.errors import InferenceError

__all__ = ["FlowInputBuilder", "FlowInputs", "PromptPlan", "mrope_tables"]

_IMAGE_PREFIX = "observation.images."
_PLAN_CACHE_SIZE = 8
_MAX_DOF = 20  # WallX pads state and action to 20 dimensions


@dataclass(frozen=True)
class PromptPlan:
    """Everything fixed by (instruction, camera image sizes); built once, reused for every chunk."""

    input_ids: torch.Tensor  # (1, S) host
    seq_len: int  # S: tokens up to and including the last action token
    action_start: int  # P: index of the first action token (they are contiguous, P..S-1)
    grid: Grid  # (t, h, w) patches per camera image
    resize_hw: tuple[tuple[tuple[int, int], tuple[int, int]], ...]  # per camera: first and second resize (h, w)
    image_positions: torch.Tensor  # device, token indices of image tokens
    propri_positions: torch.Tensor  # device, token indices of proprioception tokens
    text_embeds: torch.Tensor  # device (1, S, H): token embeddings before images / state are scattered in
    cos: torch.Tensor  # device (1, 1, S, head_dim), model dtype: the language model's rotary tables, with
    sin: torch.Tensor  # each mrope section (temporal, height, width) already taken from its own table
    allowed: torch.Tensor  # device (1, 1, S, S) bool: stock's attention pattern (causal + bidirectional actions)
    additive_mask: torch.Tensor  # device (1, 1, S, S) model dtype: 0 where allowed, finfo.min elsewhere
    action_rows_unmasked: bool  # action queries see every key (no padding, no sliding-window cut)


@dataclass(frozen=True)
class FlowInputs:
    """Per-observation inputs, all on the model's device."""

    plan: PromptPlan
    pixel_values: torch.Tensor | None  # (patches, C * T * P * P) float32; None: made from ``images`` later
    images: tuple[torch.Tensor, ...]  # with pixel_values None: uint8 (H, W, 3) per camera as received
    proprioception: torch.Tensor  # (1, 1, 20) float32
    agent_pos_mask: torch.Tensor  # (1, 1, 20) float32


class FlowInputBuilder:
    """Turns an Observation into FlowInputs for one loaded WallX policy."""

    def __init__(self, policy: Any, preprocessor: Any) -> None:
        self._policy = policy
        self._model = policy.model
        self._pre = preprocessor
        self._internals = internals.wallx_internals()
        self.device = torch.device(str(policy.config.device))
        self.cameras: tuple[str, ...] = tuple(k[len(_IMAGE_PREFIX):] for k in policy.config.image_features)
        self.chunk_size = int(policy.config.chunk_size)
        processor = self._model.processor
        self._tokenizer = processor.tokenizer
        ip = processor.image_processor
        self._ip = ip
        self._patch = int(ip.patch_size)
        self._merge = int(ip.merge_size)
        self._temporal = int(ip.temporal_patch_size)
        if not (getattr(ip, "do_rescale", True) and getattr(ip, "do_normalize", True)):
            raise InferenceError("fast_flow expects the Qwen2.5-VL image processor to rescale and normalise")
        scale = 1.0 / float(ip.rescale_factor)
        # the fast image processor's fused rescale + normalise: (x - mean / r) / (std / r), float32
        self._mean = (torch.tensor(ip.image_mean) * scale).to(self.device).view(-1, 1, 1)
        self._std = (torch.tensor(ip.image_std) * scale).to(self.device).view(-1, 1, 1)
        self._embed_dtype = self._model.model.embed_tokens.weight.dtype
        self._resizer = PilBicubicResizer()
        self._pinned: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}
        self._plans: OrderedDict[tuple[Any, ...], PromptPlan] = OrderedDict()
        dims = self._action_dim()  # preprocess_inputs' dof mask when no action is given: ones, then zeros
        self.dof_mask = torch.cat([torch.ones(1, self.chunk_size, dims),
                                   torch.zeros(1, self.chunk_size, _MAX_DOF - dims)], dim=-1).to(self.device)

    def _action_dim(self) -> int:
        return int(self._policy.config.output_features["action"].shape[0])

    # -- images -------------------------------------------------------------------------------------------
    def resize_plan(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The two (h, w) sizes stock WallX resizes an image of (height, width) to."""
        internals = self._internals
        res = internals.resolution
        first = (height, width)
        if res != -1:
            first = (int(res * height / width), res) if width > height else (res, int(res * width / height))
        second = internals.smart_resize(first[0], first[1], factor=internals.image_factor,
                                        min_pixels=internals.min_pixels, max_pixels=internals.max_pixels)
        min_pixels, max_pixels = internals.image_pixel_limits(self._ip)
        proc = internals.smart_resize(second[0], second[1], factor=self._patch * self._merge,
                                      min_pixels=min_pixels, max_pixels=max_pixels)
        if tuple(proc) != tuple(second):
            raise InferenceError(f"image processor would resize {second} again to {proc}: not supported by fast_flow")
        return first, (int(second[0]), int(second[1]))

    def _upload(self, camera: str, image: np.ndarray) -> torch.Tensor:
        """Asynchronous host -> device copy through a pinned buffer owned by this camera (one copy in flight
        per camera; the backend synchronises before the next observation reuses the buffer)."""
        src = torch.from_numpy(np.ascontiguousarray(image))
        if self.device.type != "cuda":
            return src.to(self.device)
        key = (camera, tuple(src.shape))
        staging = self._pinned.get(key)
        if staging is None:
            staging = torch.empty(src.shape, dtype=torch.uint8).pin_memory()
            self._pinned[key] = staging
        staging.copy_(src)
        return staging.to(self.device, non_blocking=True)

    def _resize(self, camera: str, image: np.ndarray,
                sizes: tuple[tuple[int, int], tuple[int, int]]) -> torch.Tensor:
        """uint8 (h, w, 3) on the device after both stock resizes (bit-exact: Pillow BICUBIC on LeRobot 0.4,
        LeRobot's own torchvision resize on 0.6)."""
        if self._internals.resize_image is not None:
            return self._resize_on_device(self._upload(camera, image), sizes)
        if self.device.type == "cpu":  # on the host Pillow itself is the fastest exact resampler
            from PIL import Image

            pil = Image.fromarray(image)
            for h, w in sizes:
                pil = pil.resize((w, h))
            return torch.from_numpy(np.asarray(pil).copy())
        return self._resize_on_device(self._upload(camera, image), sizes)

    def _resize_on_device(self, image: torch.Tensor, sizes: tuple[tuple[int, int], tuple[int, int]]) -> torch.Tensor:
        if self._internals.resize_image is not None:  # the line's own resize (it derives the same sizes)
            return self._internals.resize_image(image)  # type: ignore[no-any-return]
        for h, w in sizes:
            image = self._resizer.resize(image, h, w)
        return image

    def pixel_values(self, plan: PromptPlan, images: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Pixel values of uploaded uint8 camera images: the torch resizer (bit-exact to Pillow), normalisation
        and patches, all on the images' device and free of host syncs (so a CUDA graph can hold them)."""
        return torch.cat([self._patches(self._resize_on_device(image, sizes))
                          for image, sizes in zip(images, plan.resize_hw, strict=True)], dim=0)

    def _patches(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised, flattened patches of one resized uint8 (h, w, 3) image, as the image processor makes them."""
        x = image.permute(2, 0, 1).to(torch.float32)
        x = x.sub(self._mean).div(self._std)
        frames = x.unsqueeze(0)
        if frames.shape[0] % self._temporal:
            frames = torch.cat([frames, frames[-1:].repeat(self._temporal - 1, 1, 1, 1)], dim=0)
        t, c, h, w = frames.shape
        gt, gh, gw, m, p = t // self._temporal, h // self._patch, w // self._patch, self._merge, self._patch
        frames = frames.view(gt, self._temporal, c, gh // m, m, p, gw // m, m, p)
        frames = frames.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return frames.reshape(gt * gh * gw, c * self._temporal * p * p)

    # -- prompt -------------------------------------------------------------------------------------------
    def _plan(self, task: str, shapes: tuple[tuple[int, int], ...]) -> PromptPlan:
        key = (task, shapes)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        plan = self._make_plan(task, shapes)
        self._plans[key] = plan
        if len(self._plans) > _PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return plan

    def _make_plan(self, task: str, shapes: tuple[tuple[int, int], ...]) -> PromptPlan:
        internals = self._internals
        model = self._model
        resize_hw = tuple(self.resize_plan(h, w) for h, w in shapes)
        grid: Grid = tuple((1, s[1][0] // self._patch, s[1][1] // self._patch) for s in resize_hw)
        keys = [_IMAGE_PREFIX + c for c in self.cameras]
        text, _ = internals.get_wallx_normal_text(
            {"instruction": task}, self.chunk_size, 0, internals.priority_order, keys,
            generate_subtask_ratio=internals.generate_subtask_ratio)
        (orig_h, orig_w), (_, (res_h, res_w)) = shapes[-1], resize_hw[-1]
        text = internals.process_grounding_points(text, orig_h, orig_w, res_h, res_w, internals.model_type)
        texts = internals.replace_action_token([text], None, None, self.dof_mask.cpu())
        merge = self._merge**2
        for t, h, w in grid:  # one <|image_pad|> per camera, expanded to its token count (preprocesser_call)
            texts[0] = texts[0].replace("<|image_pad|>", "<|placeholder|>" * (t * h * w // merge), 1)
        texts[0] = texts[0].replace("<|placeholder|>", "<|image_pad|>")
        with versions.quiet_stdout():
            tok = internals.preprocesser_call(processor=model.processor, text=texts, images=None, videos=None,
                                              padding=True, truncation=True, return_tensors="pt",
                                              max_length=internals.tokenizer_max_length)
        ids = tok["input_ids"][:1]
        attention = tok["attention_mask"][:1]
        action_id = int(self._tokenizer.convert_tokens_to_ids("<|action|>"))
        propri_id = int(self._tokenizer.convert_tokens_to_ids("<|propri|>"))
        action_pos = (ids[0] == action_id).nonzero().flatten()
        n_act = int(action_pos.numel())
        if n_act != self.chunk_size:
            raise InferenceError(
                f"the prompt holds {n_act} action tokens, the model needs {self.chunk_size}: the prompt is longer than "
                f"{internals.tokenizer_max_length} tokens (instruction or images too large)")
        start = int(action_pos[0])
        if int(action_pos[-1]) != start + n_act - 1:
            raise InferenceError("action tokens are not contiguous in the prompt: not supported by fast_flow")
        if not bool(attention.all()):
            raise InferenceError("padded prompt: fast_flow runs one observation at a time")
        image_pos = (ids[0] == int(model.config.image_token_id)).nonzero().flatten()
        if int(image_pos.numel()) != sum(t * h * w // merge for t, h, w in grid):
            raise InferenceError("image token count does not match the image grid")
        propri_pos = (ids[0] == propri_id).nonzero().flatten()
        if int(propri_pos.numel()) != 1:
            raise InferenceError(f"the prompt holds {int(propri_pos.numel())} proprioception tokens, expected 1 "
                                 "(does the instruction contain '<|propri|>'?)")
        seq = start + n_act  # tokens after the action block are never seen by action tokens
        ids = ids[:, :seq]
        with torch.no_grad():
            position_ids, _ = model.get_rope_index(ids, torch.tensor(grid, dtype=torch.int64), None, None,
                                                   attention[:, :seq])
            dev_ids = ids.to(self.device)
            text_embeds = model.model.embed_tokens(dev_ids)
            cos, sin = model.model.rotary_emb(text_embeds, position_ids.to(self.device))
            sections = internals.mrope_section(model.config)
            cos, sin = mrope_tables(cos, sections), mrope_tables(sin, sections)
        try:
            window = internals.sliding_window(model.config)
        except ValueError as err:
            raise InferenceError(str(err)) from err
        allowed, unmasked = _attention_pattern(seq, start, window)
        additive = torch.where(allowed, 0.0, torch.finfo(self._embed_dtype).min).to(self._embed_dtype)
        return PromptPlan(
            input_ids=ids, seq_len=seq, action_start=start, grid=grid, resize_hw=resize_hw,
            image_positions=image_pos.to(self.device), propri_positions=propri_pos.to(self.device),
            text_embeds=text_embeds, cos=cos, sin=sin, allowed=allowed.to(self.device),
            additive_mask=additive.to(self.device), action_rows_unmasked=unmasked,
        )

    # -- public -------------------------------------------------------------------------------------------
    def build(self, observation: Observation, images_only: bool = False) -> FlowInputs:
        """Inputs for ``observation``. ``images_only``: upload the camera images and stop there (the pixel
        values are then made by ``pixel_values``, e.g. inside the flow engine's CUDA graph)."""
        missing = [c for c in self.cameras if c not in observation.images]
        if missing:
            raise InferenceError(f"observation lacks cameras {missing} (model needs {list(self.cameras)})")
        batch = self._pre({"observation.state": torch.from_numpy(np.asarray(observation.state, np.float32)),
                           "task": observation.instruction})
        task = batch["task"]
        task = str(task[0] if isinstance(task, list) else task)
        shapes = tuple((int(observation.images[c].shape[0]), int(observation.images[c].shape[1]))
                       for c in self.cameras)
        plan = self._plan(task, shapes)
        pixel_values: torch.Tensor | None = None
        images: tuple[torch.Tensor, ...] = ()
        if images_only:
            images = tuple(self._upload(c, observation.images[c]) for c in self.cameras)
        else:
            pixel_values = torch.cat([self._patches(self._resize(c, observation.images[c], sizes)).to(self.device)
                                      for c, sizes in zip(self.cameras, plan.resize_hw, strict=True)], dim=0)
        state = batch["observation.state"].to(self.device)
        agent_pos = state.unsqueeze(1) if state.dim() == 2 else state
        mask = (~torch.isnan(agent_pos)).float()
        agent_pos = agent_pos.nan_to_num(nan=0.0)
        pad = _MAX_DOF - agent_pos.shape[-1]
        if pad:
            zeros = torch.zeros(agent_pos.shape[0], agent_pos.shape[1], pad, device=agent_pos.device)
            agent_pos = torch.cat([agent_pos, zeros], dim=-1)
            mask = torch.cat([mask, zeros], dim=-1)
        return FlowInputs(plan=plan, pixel_values=pixel_values, images=images, proprioception=agent_pos,
                          agent_pos_mask=mask)


def mrope_tables(table: torch.Tensor, sections: list[int]) -> torch.Tensor:
    """(3, 1, S, D) per-axis rotary table -> (1, 1, S, D): the selection ``apply_multimodal_rotary_pos_emb``
    makes in every layer (section i of the head dimension from axis i % 3), made once per prompt."""
    parts = torch.split(table, sections * 2, dim=-1)
    return torch.cat([part[i % 3] for i, part in enumerate(parts)], dim=-1).unsqueeze(1)


def _attention_pattern(seq: int, action_start: int, sliding_window: int | None) -> tuple[torch.Tensor, bool]:
    """Stock WallX's attention pattern for one unpadded prompt: causal, plus bidirectional among the action
    tokens, minus keys beyond the sliding window (``sliding_window``: as the installed line applies it).
    Returns (allowed (1, 1, S, S), whether action rows see every key)."""
    i = torch.arange(seq).view(-1, 1)
    j = torch.arange(seq).view(1, -1)
    allowed = j <= i
    if sliding_window is not None:
        allowed &= j > i - int(sliding_window)
    action = torch.arange(seq) >= action_start
    allowed |= action.view(-1, 1) & action.view(1, -1)
    unmasked = bool(allowed[action_start:].all())
    return allowed.view(1, 1, seq, seq), unmasked
