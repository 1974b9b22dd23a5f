"""WALL-OSS through LeRobot's own ``wall_x`` policy: real pre/post processors and ``predict_action_chunk``.

Loading is offline and from local folders only, safetensors only. LeRobot's WallX loader silently keeps
a random model when a weights file cannot be read; ``WallXBackend.load`` checks that every parameter
was present in a weights file and refuses otherwise (unless ``allow_random_weights``).
"""

# size: the one model backend (load checks, pre/post-processing, prediction, prompt room); regrouped with
#   policy/'s subsystems by issue 17 item 2

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wallx_ros.core.errors import RobotMappingError
from wallx_ros.core.realtime_chunking import ActionPrefix
from wallx_ros.core.robot_mapping import ROBOT_MAPPING_FILENAME, RobotMapping
from wallx_ros.core.types import ActionChunk, Observation
from wallx_ros.lerobot import versions, wallx_model
from wallx_ros.lerobot.errors import BackboneWeightsMissingError
from wallx_ros.policy.action_tokenizer import ACTION_TOKENIZER_FILENAME, DctActionTokenizer
from wallx_ros.policy.checkpoints import checkpoint_files
from wallx_ros.policy.checkpoints.checkpoint_convert import detect_layout
from wallx_ros.policy.checkpoints.tiny_checkpoint import (
    ACTION_TOKENIZER_SUBDIR,
    BACKBONE_SUBDIR,
    CHECKPOINT_INFO_FILENAME,
)
from wallx_ros.policy.config import BackendConfig
from wallx_ros.policy.errors import CheckpointConversionError, CheckpointError, InferenceError, RandomWeightsError

if TYPE_CHECKING:
    from wallx_ros.policy.engine.fast_decode import FastDecoder
    from wallx_ros.policy.engine.flow_engine import FlowEngine
    from wallx_ros.policy.engine.rtc_guidance import FlowGuide
    from wallx_ros.policy.text_generation import TextGenerator

__all__ = ["WallXBackend"]

_LOG = logging.getLogger("wallx_ros.policy")
_PICKLE_SUFFIXES = checkpoint_files.PICKLE_SUFFIXES
_PROCESSOR_CONFIGS = ("policy_preprocessor.json", "policy_postprocessor.json")
_IMAGE_PREFIX = "observation.images."


@dataclass(frozen=True)
class _CheckpointLayout:
    """Where the pieces of a policy checkpoint are, after validation."""

    policy_dir: Path
    backbone_dir: Path
    weights_file: Path
    action_tokenizer_dir: Path | None


def _resolve_layout(config: BackendConfig, policy_cfg: Any, mode: str) -> _CheckpointLayout:
    policy_dir = config.checkpoint_dir
    weights = policy_dir / "model.safetensors"
    if not weights.is_file():
        pickles = sorted(p.name for p in policy_dir.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        hint = (f" It holds pickle files {pickles}: those can execute code when loaded and are refused;"
                " convert them to safetensors.") if pickles else ""
        raise CheckpointError(f"{weights} not found.{hint}")
    if config.backbone_dir is not None:
        backbone = config.backbone_dir
    elif (policy_dir / BACKBONE_SUBDIR).is_dir():
        backbone = policy_dir / BACKBONE_SUBDIR
    else:
        backbone = Path(str(policy_cfg.pretrained_name_or_path)).expanduser()
    if not (backbone / "config.json").is_file():
        raise CheckpointError(
            f"WALL-OSS backbone folder {str(backbone)!r} (config.pretrained_name_or_path) is not a local folder "
            "with config.json. The hub is not used: copy x-square-robot/wall-oss-flow to disk and pass "
            "backbone_dir, or keep it in <checkpoint>/wallx_backbone/."
        )
    if backbone.resolve() != policy_dir.resolve() and policy_dir.resolve() not in backbone.resolve().parents:
        checkpoint_files.check_folder(backbone, "backbone_dir")
    ignored = checkpoint_files.check_weights_are_safetensors(backbone, "backbone folder")
    if ignored:
        _LOG.warning("%s: pickle files %s are ignored (the safetensors weights are loaded)", backbone, ignored)
    tokenizer_dir: Path | None = None
    if mode == "fast":
        if config.action_tokenizer_dir is not None:
            tokenizer_dir = config.action_tokenizer_dir
        elif (policy_dir / ACTION_TOKENIZER_SUBDIR).is_dir():
            tokenizer_dir = policy_dir / ACTION_TOKENIZER_SUBDIR
        elif policy_cfg.action_tokenizer_path and Path(policy_cfg.action_tokenizer_path).is_dir():
            tokenizer_dir = Path(policy_cfg.action_tokenizer_path)
        else:
            raise CheckpointError(
                f"fast mode needs an action tokenizer folder; {policy_cfg.action_tokenizer_path!r} is not local. "
                "Pass action_tokenizer_dir (a local copy of physical-intelligence/fast needs trust_remote_code)."
            )
    if tokenizer_dir is not None and policy_dir.resolve() not in tokenizer_dir.resolve().parents:
        checkpoint_files.check_folder(tokenizer_dir, "action_tokenizer_dir")
    return _CheckpointLayout(policy_dir, backbone, weights, tokenizer_dir)


def _read_policy_config(policy_dir: Path) -> Any:
    cfg_file = policy_dir / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file} not found: checkpoint_dir must be a LeRobot wall_x policy folder")
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{cfg_file} is not valid UTF-8 JSON: {err}") from err
    if not isinstance(raw, dict):
        raise CheckpointError(f"{cfg_file} is not a JSON object: checkpoint_dir must be a LeRobot wall_x policy folder")
    if raw.get("type") != "wall_x":
        kind = raw.get("model_type") or raw.get("type")
        hint = (" This looks like a bare WALL-OSS backbone (e.g. wall-oss-flow): pass it as backbone_dir and a"
                " LeRobot policy folder (from lerobot-train) as checkpoint_dir.") if kind == "qwen2_5_vl" else ""
        raise CheckpointError(f"{cfg_file} is a {kind!r} config, not a LeRobot 'wall_x' policy.{hint}")
    try:
        return wallx_model.api().PreTrainedConfig.from_pretrained(str(policy_dir))
    except Exception as err:  # draccus raises many types for a config it cannot decode
        raise CheckpointError(f"LeRobot cannot read {cfg_file}: {err}") from err


def _check_lerobot_line(policy_dir: Path) -> None:
    """Refuse, with the fix, a policy folder saved for the other LeRobot line (it would fail later, obscurely)."""
    line = versions.installed_line()
    try:
        layout = detect_layout(policy_dir)
    except CheckpointConversionError:
        layout = None  # not a layout we know (e.g. a newer LeRobot): let LeRobot itself judge it
    if layout is not None and layout.blockers[line]:
        raise CheckpointError(
            f"{policy_dir} was saved for another LeRobot line than the installed {line} "
            f"({'; '.join(layout.blockers[line])}). Convert a copy: "
            f"wallx-ros-convert-checkpoint {policy_dir} <new folder> --to {line}"
        )


def _unloaded_parameters(model: Any, weight_files: list[Path], prefixes: list[str]) -> list[str]:
    """Names of parameters/buffers that none of ``weight_files`` provided (tied weights count once)."""
    from safetensors import safe_open

    provided: set[str] = set()
    for file, prefix in zip(weight_files, prefixes, strict=True):
        if file.is_file():
            with safe_open(str(file), framework="pt") as f:
                provided.update(prefix + k for k in f.keys())  # noqa: SIM118 - safe_open is no dict
    groups: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(tensor.data_ptr(), []).append(name)
    missing = []
    for names in groups.values():
        if not any(n in provided for n in names) and not all("normalizer" in n for n in names):
            missing.extend(names)
    return sorted(missing)


class WallXBackend:
    """A loaded LeRobot WallX policy plus its processors and robot mapping."""

    def __init__(self, config: BackendConfig, policy: Any, preprocessor: Any, postprocessor: Any,
                 mapping: RobotMapping, mode: str, flow_engine: FlowEngine | None = None,
                 fast_decoder: FastDecoder | None = None) -> None:
        self.config = config
        self.mode = mode
        self._engine = flow_engine
        self._decoder = fast_decoder
        self.engine = "fast_flow" if flow_engine is not None else "fast_decode" if fast_decoder is not None else "stock"
        self._policy = policy
        self._pre = preprocessor
        self._post = postprocessor
        self._mapping = mapping
        self._columns = np.asarray(mapping.action_columns, dtype=np.intp)
        self._device = str(policy.config.device)
        features = policy.config.input_features
        self._image_shapes = {k[len(_IMAGE_PREFIX):]: tuple(v.shape) for k, v in features.items()
                              if k.startswith(_IMAGE_PREFIX)}
        self._state_dim = int(features["observation.state"].shape[0])
        self._control_tokens = wallx_model.tokenizer_control_tokens(policy)
        self._tokenizer = policy.model.processor.tokenizer
        self._instruction_room: int | None = None  # measured by measure_prompt() at load
        self._normalise, self._rtc_problem = self._rtc_support()
        self._text: TextGenerator | None = None

    def _rtc_support(self) -> tuple[Any, str]:
        """(post-processor inverse, '') where real-time chunking can run, else (None, why not)."""
        if not self.config.rtc:
            return None, "rtc is off in the backend config"
        if self.mode != "diffusion":
            return None, f"{self.mode!r} mode generates action tokens: there is no flow to guide"
        normalise, reason = wallx_model.action_normaliser(self._post)
        return normalise, reason or ""

    @property
    def rtc_problem(self) -> str:
        """Why ``predict_chunk`` cannot take a prefix (real-time chunking), '' when it can."""
        return self._rtc_problem

    # -- PolicyBackend ------------------------------------------------------------------------------------
    @property
    def action_names(self) -> tuple[str, ...]:
        return self._mapping.action_joint_names

    @property
    def state_names(self) -> tuple[str, ...]:
        return self._mapping.state_names

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self._image_shapes)

    @property
    def fps(self) -> float:
        return self._mapping.fps

    @property
    def chunk_size(self) -> int:
        return int(self._policy.config.chunk_size)

    @property
    def device(self) -> str:
        return self._device

    @property
    def image_shapes(self) -> dict[str, tuple[int, ...]]:
        """(C, H, W) the checkpoint declares per camera: the grid a node resizes frames to at arrival."""
        return dict(self._image_shapes)

    def reset(self) -> None:
        self._policy.reset()

    def instruction_problem(self, text: str) -> str:
        """Why ``text`` cannot be the instruction ('' if it can): it must not contain the tokenizer's control
        tokens. ``<|image_pad|>`` in the text breaks every inference (image tokens no longer match the image
        features); ``<|action|>`` / ``<|propri|>`` would move where the model reads its state and writes actions."""
        found = sorted(t for t in self._control_tokens if t in text)
        if found:
            return (f"instruction contains the model's control token(s) {found[:3]}: they would corrupt the prompt "
                    "layout (image, state and action positions); remove them")
        if self._instruction_room is not None and len(text) > self._instruction_room // 8:  # cheap pre-filter
            tokens = len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
            if tokens > self._instruction_room:
                return (f"instruction of {tokens} tokens does not fit the model's prompt ({self._instruction_room} "
                        "tokens left after images, state and action slots; LeRobot would truncate the action slots)")
        return ""

    def measure_prompt(self) -> int:
        """Measure how many tokens the instruction may use (no model forward); returns that number."""
        obs = self._synthetic_observation("")
        batch = self._pre(self._batch(obs))
        room = wallx_model.prompt_token_room(self._policy, batch) - 2  # tokens may merge at the boundaries
        self._instruction_room = room
        return room

    def _synthetic_observation(self, instruction: str) -> Observation:
        images = {cam: np.full((shape[1], shape[2], 3), 127, dtype=np.uint8)
                  for cam, shape in self._image_shapes.items()}
        return Observation(images=images, state=np.zeros(self._state_dim, dtype=np.float32), instruction=instruction,
                           stamp_ns=0)

    def _batch(self, observation: Observation) -> dict[str, Any]:
        import torch

        batch: dict[str, Any] = {"observation.state": torch.from_numpy(np.asarray(observation.state, np.float32)),
                                 "task": observation.instruction}
        for cam in self.cameras:
            img = torch.from_numpy(observation.images[cam]).permute(2, 0, 1)
            batch[_IMAGE_PREFIX + cam] = img.to(torch.float32).div_(255.0)
        return batch

    def warmup(self) -> float:
        obs = self._synthetic_observation("warm up")
        t0 = time.monotonic()
        self.predict_chunk(obs)
        return (time.monotonic() - t0) * 1000.0

    def predict_chunk(self, observation: Observation, prefix: ActionPrefix | None = None) -> ActionChunk:
        """The chunk for ``observation``; with ``prefix`` (real-time chunking) the flow is guided to continue it."""
        import torch

        missing = [c for c in self.cameras if c not in observation.images]
        if missing:
            raise InferenceError(f"observation lacks cameras {missing} (model needs {list(self.cameras)})")
        if observation.state.shape != (self._state_dim,):
            raise InferenceError(f"state has shape {observation.state.shape}, model needs ({self._state_dim},)")
        problem = self.instruction_problem(observation.instruction)
        if problem:
            raise InferenceError(problem)
        if prefix is not None and self._rtc_problem:
            raise InferenceError(f"real-time chunking is not available: {self._rtc_problem}")
        t0 = time.monotonic()
        if self._engine is not None:  # fast_flow: inputs built on the device, no images through the pipeline
            batch: Any = self._engine.prepare(observation)
        else:
            batch = self._pre(self._batch(observation))
        guide = self._guide(prefix) if prefix is not None else None
        t1 = time.monotonic()
        if self.config.seed is not None:
            torch.manual_seed(self.config.seed)
        with versions.quiet_stdout() as printed:
            try:
                if self._engine is not None:
                    actions = self._engine.run(batch, guide=guide)
                elif guide is not None:  # stock velocity, our guided Euler loop
                    from wallx_ros.policy.engine.rtc_guidance import guided_euler

                    with wallx_model.stock_flow_integrator(
                            lambda func, y0, times: guided_euler(func, y0, times, guide)):
                        actions = self._policy.predict_action_chunk(batch)
                elif self._decoder is not None:  # stock generation, lean decode steps
                    with self._decoder.active():
                        actions = self._policy.predict_action_chunk(batch)
                else:
                    actions = self._policy.predict_action_chunk(batch)
            except torch.cuda.OutOfMemoryError as err:
                raise InferenceError(f"out of GPU memory during inference: {err}") from err
            except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as err:  # LeRobot asserts too
                if "Error in decoding action" in printed.getvalue():
                    raise InferenceError("fast mode: the model generated no decodable action tokens") from err
                raise InferenceError(f"WallX inference failed: {type(err).__name__}: {err}") from err
        if self._device.startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.monotonic()
        actions = self._post(actions)
        chunk = actions.detach().to("cpu", torch.float64).numpy()[0]
        t3 = time.monotonic()
        return ActionChunk(
            actions=np.ascontiguousarray(chunk[:, self._columns]), names=self.action_names,
            stamp_ns=observation.stamp_ns, dt_s=1.0 / self.fps,
            timings_ms={"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3},
        )

    # -- the language side ----------------------------------------------------------------------------------
    def text_generator(self) -> TextGenerator:
        """The model's language head (current subtask, questions about the scene), built on first use. It shares
        the loaded model: use it only from the thread that calls ``predict_chunk``."""
        if self._text is None:
            from wallx_ros.policy.text_generation import TextGenerator

            self._text = TextGenerator(self._policy, self._text_inputs, cuda_graphs=self.config.cuda_graphs,
                                       engine="stock" if self.config.engine == "stock" else "auto")
        return self._text

    def _text_inputs(self, observation: Observation) -> Any:
        """LeRobot's model inputs of ``observation`` (its images processed exactly as for a chunk)."""
        missing = [c for c in self.cameras if c not in observation.images]
        if missing:
            raise InferenceError(f"observation lacks cameras {missing} (model needs {list(self.cameras)})")
        if observation.state.shape != (self._state_dim,):
            raise InferenceError(f"state has shape {observation.state.shape}, model needs ({self._state_dim},)")
        return wallx_model.preprocess_inputs(self._policy, self._pre(self._batch(observation)))

    def _guide(self, prefix: ActionPrefix) -> FlowGuide:
        from wallx_ros.policy.engine.rtc_guidance import build_guide

        cfg = self._policy.config
        return build_guide(prefix, self._columns, int(cfg.output_features["action"].shape[0]), int(cfg.chunk_size),
                           int(cfg.max_action_dim), self._normalise, self._device, self.config.rtc_max_guidance)

    # -- loading ------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, config: BackendConfig, mapping: RobotMapping | None = None) -> WallXBackend:
        """Load ``config.checkpoint_dir``; ``mapping`` overrides the checkpoint's wallx_ros_robot.json."""
        import torch

        versions.prepare_runtime()
        checkpoint_files.check_folder(config.checkpoint_dir, "checkpoint_dir")
        info = _checkpoint_info(config.checkpoint_dir)
        if info.get("random_weights") and not config.allow_random_weights:
            raise RandomWeightsError(
                f"{config.checkpoint_dir} is a test checkpoint with random weights ({CHECKPOINT_INFO_FILENAME}); "
                "it cannot control a robot. Set allow_random_weights only for tests and demos."
            )
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        _check_lerobot_line(config.checkpoint_dir)
        policy_cfg = _read_policy_config(config.checkpoint_dir)
        mode = config.mode or str(policy_cfg.prediction_mode)
        layout = _resolve_layout(config, policy_cfg, mode)
        registered = wallx_model.registered_processor_steps()
        for name in _PROCESSOR_CONFIGS:
            checkpoint_files.check_processor_config(layout.policy_dir / name, registered)
        try:
            versions.check_backbone_dir(layout.backbone_dir)
        except BackboneWeightsMissingError as err:
            raise CheckpointError(str(err)) from err
        device = config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CheckpointError(f"device {device!r} requested but torch sees no CUDA device")

        policy_cfg.device = device
        policy_cfg.prediction_mode = mode
        policy_cfg.use_fast_tokenizer = mode == "fast"
        policy_cfg.pretrained_name_or_path = str(layout.backbone_dir)
        tokenizer = None
        if mode == "fast":
            tokenizer, policy_cfg.action_tokenizer_path = _action_tokenizer(layout.action_tokenizer_dir, config)
        else:
            policy_cfg.action_tokenizer_path = None

        lr = wallx_model.api()
        with versions.quiet_stdout() as printed:
            policy = lr.WallXPolicy.from_pretrained(str(layout.policy_dir), config=policy_cfg)
        for line in printed.getvalue().splitlines():
            _LOG.debug("lerobot: %s", line)
        missing = _unloaded_parameters(policy, [layout.weights_file, layout.backbone_dir / "model.safetensors"],
                                       ["", "model."])
        if missing and not config.allow_random_weights:
            raise RandomWeightsError(
                f"{len(missing)} weight tensors (e.g. {missing[:3]}) are in no weights file of {layout.policy_dir} "
                f"or {layout.backbone_dir}: LeRobot would run them with random values. Check the checkpoint "
                "(allow_random_weights is for tests only)."
            )
        if tokenizer is not None:
            policy.model.action_tokenizer = tokenizer
            policy.model.processor.action_processor = tokenizer
        if mode == "fast" and config.fast_action_tokens_only:
            _restrict_generation_to_action_tokens(policy)
        if mode == "fast" and config.fast_min_new_tokens:
            policy.model.generation_config.min_new_tokens = config.fast_min_new_tokens
        policy.eval()
        pre, post = wallx_model.load_policy_processors(layout.policy_dir, device)
        mapping = mapping or _mapping_for(layout.policy_dir, policy.config)
        _check_mapping(mapping, policy.config)
        from wallx_ros.policy.engine.fast_decode import select_fast_decoder
        from wallx_ros.policy.engine.flow_engine import select_flow_engine

        backend = cls(config, policy, pre, post, mapping, mode, select_flow_engine(config, policy, pre, mode),
                      select_fast_decoder(config, policy, mode))
        try:
            backend.measure_prompt()
        except Exception as err:  # another LeRobot line may build its prompt differently: no length check then
            _LOG.warning("could not measure the prompt length (%s: %s): instruction length is not checked "
                         "against the model's prompt", type(err).__name__, err)
        return backend


def _checkpoint_info(policy_dir: Path) -> dict[str, Any]:
    path = policy_dir / CHECKPOINT_INFO_FILENAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{path} is not valid UTF-8 JSON: {err}") from err
    return data if isinstance(data, dict) else {}


def _action_tokenizer(directory: Path | None, config: BackendConfig) -> tuple[Any, str | None]:
    """(tokenizer to inject, path for LeRobot to load). Our own format loads as data; others run code."""
    assert directory is not None
    if (directory / ACTION_TOKENIZER_FILENAME).is_file():
        return DctActionTokenizer.from_pretrained(directory), None
    if not config.trust_remote_code:
        raise CheckpointError(
            f"action tokenizer {directory} is not a wallx_ros DCT tokenizer ({ACTION_TOKENIZER_FILENAME}); "
            "loading it (e.g. physical-intelligence/fast) executes Python code from that folder. "
            "Set trust_remote_code only if you trust it."
        )
    return None, str(directory)


def _restrict_generation_to_action_tokens(policy: Any) -> None:
    tok = policy.model.processor.tokenizer
    start = int(tok.init_kwargs["action_token_start_index"])
    allowed = set(range(start, start + int(tok.init_kwargs["action_token_vocab_size"])))
    allowed.add(int(tok.eos_token_id))
    vocab = int(policy.model.get_output_embeddings().weight.shape[0])
    policy.model.generation_config.suppress_tokens = [i for i in range(vocab) if i not in allowed]


def _mapping_for(policy_dir: Path, policy_cfg: Any) -> RobotMapping:
    if (policy_dir / ROBOT_MAPPING_FILENAME).is_file():
        return RobotMapping.load(policy_dir)
    state_dim = int(policy_cfg.input_features["observation.state"].shape[0])
    action_dim = int(policy_cfg.output_features["action"].shape[0])
    cams = tuple(k[len(_IMAGE_PREFIX):] for k in policy_cfg.input_features if k.startswith(_IMAGE_PREFIX))
    _LOG.warning("%s has no %s: naming joints state_i / action_i; give joint names as parameters",
                 policy_dir, ROBOT_MAPPING_FILENAME)
    return RobotMapping(state_names=tuple(f"state_{i}" for i in range(state_dim)),
                        action_names=tuple(f"action_{i}" for i in range(action_dim)), cameras=cams, fps=30.0)


def _check_mapping(mapping: RobotMapping, policy_cfg: Any) -> None:
    state_dim = int(policy_cfg.input_features["observation.state"].shape[0])
    action_dim = int(policy_cfg.output_features["action"].shape[0])
    if len(mapping.state_names) != state_dim or len(mapping.action_names) != action_dim:
        raise RobotMappingError(
            f"robot mapping names {len(mapping.state_names)} state / {len(mapping.action_names)} action dims, "
            f"the checkpoint has {state_dim} / {action_dim}"
        )
