#!/usr/bin/env python
"""WallX inference speed: stock LeRobot ``predict_action_chunk`` vs wallx_ros's backend, in one process.

Builds the WallX architecture (LeRobot ``wall_x``: Qwen2.5-VL backbone + MoE action expert) with random
bf16 weights - no download - at one of three sizes, then times, on the same model and the same inputs:

* ``stock``: LeRobot's preprocessor pipeline + ``WallXPolicy.predict_action_chunk`` + postprocessor
  (the model call alone is reported too, as ``stock_predict_action_chunk``);
* ``wallx_ros``: ``WallXBackend.predict_chunk`` (numpy observation in, numpy chunk out) with the
  fast flow engine (flow mode; on CUDA with and without CUDA graphs); in fast mode LeRobot's
  ``generate`` with ``fast_decode``'s decode steps;

for each camera count and prediction mode: p50 / p90 / mean ms, first-call ms, peak GPU memory, and the
largest difference between the two paths' normalised actions for the same seed (flow) or input (fast).
``--rtc`` adds ``wallx_ros_rtc``: the same backend with real-time chunking, every chunk guided by a 20-row prefix
(6 frozen), timed in the same run (its cost vs ``wallx_ros``: ``rtc_cost_vs_wallx_ros_p50``).

Sizes: ``full`` = WALL-OSS-flow (Qwen2.5-VL-3B + MoE expert, 4.22 B parameters; needs a GPU with
>= 40 GB, ~27 GB transient while building), ``mid`` (0.39 B, for CPU figures), ``tiny`` (CPU smoke test).

    python bench/inference/wallx_inference.py --size full                       # on an H100
    python bench/inference/wallx_inference.py --size mid --iters 3 --warmup 1   # CPU figure
    python bench/inference/wallx_inference.py --size tiny --iters 1 --warmup 0  # smoke test (CI)

Results: bench/results/inference_<size>_<device>.json (or --out-dir), naming the device and machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

# ---------------------------------------------------------------------------------------------- sizes
# WALL-OSS-flow (wall-x repo, workspace/models_config/qwen2_5_moe_flash.json): Qwen2.5-VL-3B + MoE expert.
FULL_TEXT = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                 num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, max_position_embeddings=128000,
                 max_window_layers=70, sliding_window=32768, tie_word_embeddings=True,
                 rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                 experts=[{"hidden_size": 2048, "intermediate_size": 11008, "hidden_act": "silu"},
                          {"hidden_size": 2048, "intermediate_size": 2048, "hidden_act": "silu"}],
                 dim_inputs=[2048, 2048])
FULL_VISION = dict(depth=32, hidden_act="silu", hidden_size=1280, intermediate_size=3420, num_heads=16,
                   in_channels=3, out_hidden_size=2048, patch_size=14, spatial_merge_size=2, window_size=112,
                   fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, temporal_patch_size=2)
# mid: same shapes per head (head_dim 128 / 80), a quarter of the width x depth; 0.39 B parameters
MID_TEXT = dict(FULL_TEXT, hidden_size=1024, intermediate_size=5504, num_hidden_layers=8, num_attention_heads=8,
                rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                experts=[{"hidden_size": 1024, "intermediate_size": 5504, "hidden_act": "silu"},
                         {"hidden_size": 1024, "intermediate_size": 1024, "hidden_act": "silu"}],
                dim_inputs=[1024, 1024])
MID_VISION = dict(FULL_VISION, depth=8, hidden_size=640, intermediate_size=1710, num_heads=8, out_hidden_size=1024,
                  fullatt_block_indexes=[3, 7])
TINY_TEXT = dict(FULL_TEXT, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=4096, max_window_layers=2, sliding_window=4096,
                 rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                 experts=[{"hidden_size": 64, "intermediate_size": 128, "hidden_act": "silu"},
                          {"hidden_size": 64, "intermediate_size": 64, "hidden_act": "silu"}],
                 dim_inputs=[64, 64])
TINY_VISION = dict(FULL_VISION, depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                   fullatt_block_indexes=[1])
SIZES = {"full": (FULL_TEXT, FULL_VISION), "mid": (MID_TEXT, MID_VISION), "tiny": (TINY_TEXT, TINY_VISION)}
DOF20 = {"follow_left_ee_cartesian_pos": 3, "follow_left_ee_rotation": 3, "follow_left_gripper": 1,
         "follow_right_ee_cartesian_pos": 3, "follow_right_ee_rotation": 3, "follow_right_gripper": 1,
         "head_actions": 2, "height": 1, "car_pose": 3}
CAMERAS = ("face_view", "left_wrist_view", "right_wrist_view")
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
                 "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                 "<|repo_name|>", "<|file_sep|>")
QWEN_FIRST_SPECIAL, QWEN_ASSISTANT = 151643, 77091
# prompts like WallX's, to train a small BPE so that prompt token counts are realistic (~ Qwen's)
PROMPT_CORPUS = (
    "system\nYou are a helpful assistant.\n", "user\nObservation: front view: left wrist view: right wrist view:",
    "\nInstruction: pick up the red cube and put it in the box.\nPredict the next action in robot action.\n"
    "Proprioception: \n", "assistant\n", "Pick up the object. Place the cup on the plate. Open the drawer.",
    "Fold the towel. Move the arm to the left. Put the apple in the bowl. Stack the blocks. Clean the table.",
)
INSTRUCTION = "pick up the red cube and put it in the box"
STATE_DIM, ACTION_DIM = 14, 20  # LeRobot 0.4.4 fast mode needs 20 action dims


def build_tokenizer(n_action_tokens: int) -> Any:
    """Qwen2 tokenizer built locally: small trained BPE, every special token at its real Qwen2.5 id."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    base.train_from_iterator(list(PROMPT_CORPUS) * 20, trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    spec = json.loads(base.to_str())["model"]
    vocab = dict(spec["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    by_id = {i: t for t, i in vocab.items()}
    for i in range(len(vocab), QWEN_FIRST_SPECIAL):  # fillers up to Qwen's special-token ids
        vocab[f"<|filler_{i}|>"] = i
    if "assistant" in vocab:  # LeRobot 0.4.4's fast mode looks for [151644, 77091]
        vocab[by_id.get(QWEN_ASSISTANT, f"<|filler_{QWEN_ASSISTANT}|>")] = vocab["assistant"]
    else:
        del vocab[f"<|filler_{QWEN_ASSISTANT}|>"]
    vocab["assistant"] = QWEN_ASSISTANT
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([AddedToken("assistant", special=False, normalized=False)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIALS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in
                    ["<|propri|>", "<|action|>"] + [f"<|action_token_{i}|>" for i in range(n_action_tokens)]])
    hf = Qwen2TokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                            unk_token=None, padding_side="left", model_max_length=32768)
    hf.init_kwargs["action_token_start_index"] = hf.convert_tokens_to_ids("<|action_token_0|>")
    hf.init_kwargs["action_token_vocab_size"] = n_action_tokens
    assert hf("<|im_start|>assistant\n").input_ids[:2] == [QWEN_FIRST_SPECIAL + 1, QWEN_ASSISTANT]
    return hf


def write_backbone(directory: Path, size: str, n_action_tokens: int) -> None:
    from wallx_ros.lerobot import versions, wallx_model

    lr = wallx_model.api()
    consts = lr.wallx_constants
    text, vision = SIZES[size]
    tok = build_tokenizer(n_action_tokens)
    wallx_model.make_qwen_processor(dict(min_pixels=consts.MIN_PIXELS, max_pixels=consts.MAX_PIXELS, patch_size=14,
                                         temporal_patch_size=2, merge_size=2), tok).save_pretrained(str(directory))
    ids = {field: tok.convert_tokens_to_ids(t) for field, t in (
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"),
        ("vision_token_id", "<|vision_pad|>"), ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>"), ("bos_token_id", "<|endoftext|>"), ("eos_token_id", "<|im_end|>"))}
    lr.Qwen2_5_VLConfig(
        vocab_size=len(tok), hidden_act="silu", initializer_range=0.02, attention_dropout=0.0, use_cache=True,
        use_sliding_window=False, vision_config=copy.deepcopy(vision), num_experts=2, attention_moe=False,
        mlp_moe=True, dof_config=DOF20, agent_pos_config=DOF20, torch_dtype="bfloat16",
        noise_scheduler={"beta_alpha": 1.5, "beta_beta": 1.0, "s": 0.999, "num_inference_timesteps": 10},
        architectures=["Qwen2_5_VLForConditionalGeneration"], **ids, **copy.deepcopy(text),
    ).save_pretrained(str(directory))
    if versions.backbone_weights_required():  # LeRobot 0.6 refuses a backbone folder without the file;
        from safetensors.torch import save_file  # empty: the weights stay the seeded random init

        save_file({}, str(directory / versions.BACKBONE_WEIGHTS_FILENAME), metadata={"format": "pt"})


# ------------------------------------------------------------------------------------------ measuring
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def summary(ms: list[float]) -> dict[str, float]:
    xs = sorted(ms)
    def q(p: float) -> float:
        return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]
    return {"p50": round(statistics.median(xs), 2), "p90": round(q(0.9), 2), "mean": round(statistics.fmean(xs), 2),
            "min": round(xs[0], 2), "max": round(xs[-1], 2), "n": len(xs)}


def machine(device: str) -> dict[str, Any]:
    import torch
    import transformers

    from wallx_ros.lerobot import versions

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "device": device, "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "lerobot": ".".join(map(str, versions.lerobot_version())),
    }
    return info


class Bench:
    """One random-weight WallX model, timed through stock LeRobot and through wallx_ros's backend."""

    def __init__(self, args: argparse.Namespace, device: str, work: Path) -> None:
        import torch

        from wallx_ros.lerobot import versions, wallx_model
        from wallx_ros.policy.action_tokenizer import DctActionTokenizer

        self.args, self.device = args, device
        self.rows: list[dict[str, Any]] = []  # rows of the configuration being timed (rtc compares with them)
        self.lr = wallx_model.api()
        backbone = work / "backbone"
        write_backbone(backbone, args.size, args.fast_vocab)
        self.cfg = self._config(backbone, CAMERAS)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        torch.manual_seed(0)
        t0 = time.perf_counter()
        with versions.quiet_stdout(), torch.device(device):  # random init directly on the device
            self.policy = self.lr.WallXPolicy(self.cfg)
        sync(device)
        self.build_s = time.perf_counter() - t0
        self.policy.eval()
        tokenizer = DctActionTokenizer(vocab_size=args.fast_vocab, time_horizon=args.chunk, action_dim=ACTION_DIM)
        self.policy.model.action_tokenizer = tokenizer
        self.policy.model.processor.action_processor = tokenizer
        self.params = sum(p.numel() for p in self.policy.parameters())

    def _config(self, backbone: Path, cams: tuple[str, ...]) -> Any:
        lr = self.lr
        cfg = lr.WallXConfig(device=self.device, prediction_mode="diffusion", pretrained_name_or_path=str(backbone),
                             action_tokenizer_path=None, attn_implementation="eager",
                             chunk_size=self.args.chunk, n_action_steps=self.args.chunk)
        self._set_features(cfg, cams)
        return cfg

    def _set_features(self, cfg: Any, cams: tuple[str, ...]) -> None:
        lr = self.lr
        cfg.input_features = {
            "observation.state": lr.PolicyFeature(type=lr.FeatureType.STATE, shape=(STATE_DIM,)),
            **{f"observation.images.{c}": lr.PolicyFeature(type=lr.FeatureType.VISUAL, shape=(3, *self.args.img))
               for c in cams}}
        cfg.output_features = {"action": lr.PolicyFeature(type=lr.FeatureType.ACTION, shape=(ACTION_DIM,))}

    def backend(self, cams: tuple[str, ...], mode: str, cuda_graphs: bool,
                compile_layers: bool = False, rtc: bool = False) -> tuple[Any, Any, Any]:
        """(wallx_ros backend, LeRobot preprocessor, postprocessor) for this camera set and mode."""
        import torch

        from wallx_ros.core.robot_mapping import RobotMapping
        from wallx_ros.policy.config import BackendConfig
        from wallx_ros.policy.engine.fast_decode import select_fast_decoder
        from wallx_ros.policy.engine.flow_engine import select_flow_engine
        from wallx_ros.policy.wallx_backend import WallXBackend, _restrict_generation_to_action_tokens

        cfg = self.policy.config
        self._set_features(cfg, cams)
        cfg.prediction_mode = mode
        cfg.use_fast_tokenizer = mode == "fast"
        stats = {"observation.state": {"mean": torch.linspace(-0.5, 0.5, STATE_DIM), "std": torch.ones(STATE_DIM)},
                 "action": {"mean": torch.zeros(ACTION_DIM), "std": torch.ones(ACTION_DIM)}}
        pre, post = self.lr.make_wall_x_pre_post_processors(cfg, dataset_stats=stats)
        model = self.policy.model
        if mode == "fast":  # random weights: only action tokens, exactly --fast-tokens of them (100 = worst case)
            _restrict_generation_to_action_tokens(self.policy)
            model.generation_config.min_new_tokens = self.args.fast_tokens
            if self.args.fast_tokens < 100:  # end-of-sequence wins as soon as it is allowed
                eos = int(model.processor.tokenizer.eos_token_id)
                model.generation_config.sequence_bias = {(eos,): 1e4}
        config = BackendConfig(checkpoint_dir=Path(tempfile.gettempdir()), device=self.device, mode=mode,
                               allow_random_weights=True, cuda_graphs=cuda_graphs, engine="auto",
                               flow_attention=self.args.flow_attention, flow_compile=compile_layers, rtc=rtc)
        engine = select_flow_engine(config, self.policy, pre, mode)
        decoder = select_fast_decoder(config, self.policy, mode)
        mapping = RobotMapping(state_names=tuple(f"s{i}" for i in range(STATE_DIM)),
                               action_names=tuple(f"a{i}" for i in range(ACTION_DIM)), cameras=cams, fps=30.0)
        return WallXBackend(config, self.policy, pre, post, mapping, mode, engine, decoder), pre, post

    def observation(self, cams: tuple[str, ...], seed: int) -> Any:
        from wallx_ros.core.types import Observation

        rng = np.random.default_rng(seed)
        return Observation(images={c: rng.integers(0, 256, (*self.args.img, 3), dtype=np.uint8) for c in cams},
                           state=rng.normal(size=STATE_DIM).astype(np.float32), instruction=INSTRUCTION,
                           stamp_ns=seed)

    @staticmethod
    def stock_batch(obs: Any) -> dict[str, Any]:
        import torch

        batch: dict[str, Any] = {"observation.state": torch.from_numpy(obs.state), "task": obs.instruction}
        for cam, img in obs.images.items():
            batch[f"observation.images.{cam}"] = torch.from_numpy(img).permute(2, 0, 1).float().div_(255)
        return batch

    def run(self, cams: tuple[str, ...], mode: str) -> list[dict[str, Any]]:
        import torch

        args, dev = self.args, self.device
        cuda = dev.startswith("cuda")
        variants = [("wallx_ros", True, False)]
        if args.rtc and mode == "diffusion":
            variants.append(("wallx_ros_rtc", True, False))
        if cuda:
            variants.append(("wallx_ros_no_cuda_graphs", False, False))
        if args.compile and mode == "diffusion":
            variants.append(("wallx_ros_compiled", True, True))
        out = []
        _, pre, post = self.backend(cams, mode, cuda_graphs=True)
        n = args.warmup + (args.iters if mode == "diffusion" else args.fast_iters)
        # -- stock LeRobot
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        e2e, model_only, first = [], [], None
        for i in range(n):
            obs = self.observation(cams, 1000 + i)
            sync(dev)
            t0 = time.perf_counter()
            batch = pre(self.stock_batch(obs))
            sync(dev)
            t1 = time.perf_counter()
            with self.lr_quiet():
                actions = self.policy.predict_action_chunk(batch)
            sync(dev)
            t2 = time.perf_counter()
            post(actions).numpy()
            t3 = time.perf_counter()
            if first is None:
                first = (t3 - t0) * 1e3
            if i >= args.warmup:
                e2e.append((t3 - t0) * 1e3)
                model_only.append((t2 - t1) * 1e3)
        stock: dict[str, Any] = {"path": "stock", "cams": len(cams), "mode": mode, "end_to_end_ms": summary(e2e),
                                 "stock_predict_action_chunk_ms": summary(model_only), "first_call_ms": round(first, 1)}
        if cuda:
            stock["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        out.append(stock)
        # -- wallx_ros backend (fast flow engine in flow mode)
        self.rows = out
        for name, graphs, compiled in variants:
            try:
                out.append(self._time_backend(name, graphs, compiled, cams, mode, n, stock))
            except Exception as err:  # one failing variant must not lose the configuration's other rows
                traceback.print_exc()  # the row keeps the message; stderr keeps where it came from
                out.append({"path": name, "cams": len(cams), "mode": mode, "error": f"{type(err).__name__}: {err}"})
        for r in out:
            print(json.dumps(r), flush=True)
        return out

    def _time_backend(self, name: str, graphs: bool, compiled: bool, cams: tuple[str, ...], mode: str, n: int,
                      stock: dict[str, Any]) -> dict[str, Any]:
        import torch

        from wallx_ros.core.realtime_chunking import ActionPrefix, prefix_weights

        args, cuda = self.args, self.device.startswith("cuda")
        rtc = name.endswith("_rtc")
        backend, pre, _ = self.backend(cams, mode, cuda_graphs=graphs, compile_layers=compiled, rtc=rtc)
        prefix = None
        if rtc:  # a running plan of 20 rows, 6 of them frozen: a new one each chunk costs what the node's does
            rows = np.sin(np.arange(1, 21)[:, None] * 0.05 + np.arange(ACTION_DIM)[None, :]) * 0.5
            prefix = ActionPrefix(rows, prefix_weights(6, 20, "exp"), 6)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        times, first = [], None
        for i in range(n):
            obs = self.observation(cams, 1000 + i)
            t0 = time.perf_counter()
            chunk = backend.predict_chunk(obs, prefix)
            t1 = time.perf_counter()
            if first is None:
                first = (t1 - t0) * 1e3
            if i >= args.warmup:
                times.append((t1 - t0) * 1e3)
        res: dict[str, Any] = {"path": name, "engine": backend.engine, "cams": len(cams), "mode": mode,
                               "end_to_end_ms": summary(times), "first_call_ms": round(first, 1),
                               "speedup_vs_stock_p50": round(stock["end_to_end_ms"]["p50"] /
                                                             statistics.median(times), 2),
                               "chunk_shape": list(chunk.actions.shape)}
        if rtc:
            plain = next((r for r in self.rows if r.get("path") == "wallx_ros" and r.get("cams") == len(cams)
                          and r.get("mode") == mode and "end_to_end_ms" in r), None)
            if plain is not None:
                res["rtc_cost_vs_wallx_ros_p50"] = round(statistics.median(times) / plain["end_to_end_ms"]["p50"]
                                                         - 1, 4)
        if backend.engine == "fast_flow" and not rtc:
            res["flow_attention"] = backend._engine.attention
            res["cuda_graphs"] = backend._engine.cuda_graphs
            res["compiled_layers"] = backend._engine.compile_layers
            res["max_abs_action_diff_vs_stock"], res["prompt_tokens"] = self.action_diff(backend, pre, cams)
        if backend.engine == "fast_decode":
            res["cuda_graphs"] = backend._decoder.cuda_graphs  # false once a capture failed (logged)
            res.update(self.fast_mode_diff(backend, pre, cams))
        if cuda:
            res["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        if args.profile and mode == "diffusion" and backend.engine == "fast_flow":
            res["profile"] = self.profile(backend, cams)
        return res

    def action_diff(self, backend: Any, pre: Any, cams: tuple[str, ...]) -> tuple[float, int]:
        """Largest |stock - wallx_ros| over a few seeded chunks (normalised actions, same noise), prompt length."""
        import torch

        worst, seq_len = 0.0, 0
        for seed in range(self.args.check_seeds):
            obs = self.observation(cams, 5000 + seed)
            torch.manual_seed(seed)
            with self.lr_quiet():
                ref = self.policy.predict_action_chunk(pre(self.stock_batch(obs)))
            torch.manual_seed(seed)
            inputs = backend._engine.prepare(obs)
            ours = backend._engine.run(inputs)
            seq_len = inputs.plan.seq_len
            worst = max(worst, float((ref.float() - ours.float()).abs().max()))
        return worst, seq_len

    def fast_mode_diff(self, backend: Any, pre: Any, cams: tuple[str, ...]) -> dict[str, Any]:
        """Stock vs wallx_ros fast-mode chunks for the same observations (greedy decoding: 0.0 on CPU).

        On CUDA the two paths round differently (the prefill's vision tower, GEMM shapes), and greedy decoding
        of a random-weight model meets near-ties: one flipped token changes the rest of the sequence and the
        FAST-decoded actions with it. So besides the action difference this reports where the token sequences
        first differ and, there, stock's gap between its best two tokens next to how far the two paths' logits
        differ: a flip at a gap smaller than the rounding difference is rounding, not a decoding error."""
        import torch

        model = self.policy.model
        original = type(model).generate.__get__(model)
        records: list[tuple[Any, Any]] = []

        def generate(*args: Any, **kwargs: Any) -> Any:  # keep (tokens, per-step logits); predict gets tokens
            out = original(*args, **kwargs, output_logits=True, return_dict_in_generate=True)
            records.append((out.sequences.clone(), torch.stack(out.logits, 1)[0].float()))
            return out.sequences

        worst, scale, seeds = 0.0, 0.0, []
        model.generate = generate
        try:
            for seed in range(self.args.check_seeds):
                obs = self.observation(cams, 5000 + seed)
                with self.lr_quiet():
                    ref = self.policy.predict_action_chunk(pre(self.stock_batch(obs)))
                    self.policy.predict_action_chunk(pre(self.stock_batch(obs)))  # stock again: deterministic?
                    with backend._decoder.active():
                        ours = self.policy.predict_action_chunk(pre(self.stock_batch(obs)))
                (seq_s, log_s), (seq_s2, _), (seq_o, log_o) = records[-3:]
                worst = max(worst, float((ref.float() - ours.float()).abs().max()))
                scale = max(scale, float(ref.float().abs().max()))
                gen_s, gen_o = seq_s[0, -log_s.shape[0]:], seq_o[0, -log_o.shape[0]:]
                differ = (gen_s != gen_o).nonzero()
                first = int(differ[0]) if len(differ) else None
                allowed = torch.isfinite(log_o[0])  # fast_decode gives suppressed tokens -inf
                upto = log_s.shape[0] if first is None else first + 1  # same prefix: same inputs up to here
                logit_diff = (log_s[:upto, allowed] - log_o[:upto, allowed]).abs().amax(dim=1)
                row: dict[str, Any] = {
                    "seed": seed, "tokens": int(gen_s.numel()), "tokens_equal": first is None,
                    "first_differing_token": first, "stock_repeat_tokens_equal": bool(torch.equal(seq_s, seq_s2)),
                    "max_logit_diff_step0": round(float(logit_diff[0]), 4),
                    "max_logit_diff_up_to_first_difference": round(float(logit_diff.max()), 4)}
                if first is not None:
                    top2 = log_s[first, allowed].topk(2).values
                    row["stock_top2_gap_at_first_difference"] = round(float(top2[0] - top2[1]), 4)
                    row["logit_diff_at_first_difference"] = round(float(logit_diff[first]), 4)
                seeds.append(row)
        finally:
            del model.generate
        return {"max_abs_action_diff_vs_stock": worst, "stock_max_abs_action": scale, "token_agreement": seeds}

    def profile(self, backend: Any, cams: tuple[str, ...], chunks: int = 3) -> dict[str, Any]:
        """Where one chunk's time goes (torch.profiler): CPU-side input preparation vs GPU work, kernel count,
        GPU-busy time and the kernels that take most of it, averaged over ``chunks`` chunks."""
        import torch
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        obs = [self.observation(cams, 9000 + i) for i in range(chunks)]
        prep_ms = []
        cuda = self.device.startswith("cuda")
        with torch_profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            for o in obs:
                sync(self.device)
                t0 = time.perf_counter()
                inputs = backend._engine.prepare(o)
                sync(self.device)
                prep_ms.append((time.perf_counter() - t0) * 1e3)
                backend._engine.run(inputs)
                sync(self.device)
        kind = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU  # CPU: every op
        kernels = [e for e in prof.key_averages() if e.device_type == kind]
        def dev_us(e: Any) -> float:
            if not cuda:
                return float(e.self_cpu_time_total)
            return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)))
        busy_us = sum(dev_us(e) for e in kernels)
        top = sorted(kernels, key=dev_us, reverse=True)[:12]
        return {"chunks": chunks, "prepare_ms_p50": round(statistics.median(prep_ms), 2),
                "kernel_launches_per_chunk": round(sum(e.count for e in kernels) / chunks),
                "gpu_busy_ms_per_chunk": round(busy_us / 1e3 / chunks, 2),
                "top_kernels": [{"name": e.key[:90], "ms_per_chunk": round(dev_us(e) / 1e3 / chunks, 3),
                                 "calls_per_chunk": round(e.count / chunks, 1)} for e in top]}

    @staticmethod
    def lr_quiet() -> Any:
        from wallx_ros.lerobot import versions

        return versions.quiet_stdout()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=tuple(SIZES), default="full")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    ap.add_argument("--cams", default="1,3", help="comma list of camera counts")
    ap.add_argument("--modes", default="diffusion,fast", help="comma list: diffusion (flow), fast")
    ap.add_argument("--fast-cams", default=None, help="camera counts for fast mode (default: --cams)")
    ap.add_argument("--img", default="224,224", help="camera image height,width")
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--iters", type=int, default=20, help="timed flow-mode chunks per configuration")
    ap.add_argument("--fast-iters", type=int, default=3, help="timed fast-mode chunks per configuration")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--check-seeds", type=int, default=2, help="chunks compared stock vs wallx_ros per config")
    ap.add_argument("--fast-tokens", type=int, default=100, help="action tokens generated per fast-mode chunk")
    ap.add_argument("--fast-vocab", type=int, default=2048, help="FAST-like action token vocabulary")
    ap.add_argument("--flow-attention", default="auto", choices=("auto", "eager", "sdpa"),
                    help="wallx_ros fast_flow attention kernel (auto: sdpa on CUDA, eager on CPU)")
    ap.add_argument("--profile", action="store_true", help="profile 3 wallx_ros flow chunks")
    ap.add_argument("--rtc", action="store_true", help="also time real-time chunking (flow mode), same run")
    ap.add_argument("--compile", action="store_true",
                    help="also time wallx_ros with flow_compile (torch.compile'd decoder layer + vision block)")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--out-dir", default=str(REPO / "bench" / "results"))
    args = ap.parse_args(argv)
    args.img = tuple(int(v) for v in args.img.split(","))

    from wallx_ros.lerobot import internals, versions

    versions.prepare_runtime()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA requested but torch sees no GPU", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"benchmark": "wallx_inference", "size": args.size, **machine(device),
                              "image_hw": list(args.img), "flow_attention_arg": args.flow_attention,
                              "chunk_size": args.chunk, "fast_tokens": args.fast_tokens,
                              "flow_steps": internals.flow_steps(), "instruction": INSTRUCTION,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": []}
    tag = (report["gpu"] or "cpu").lower().replace(" ", "_").replace("/", "_")
    out = Path(args.out_dir) / f"inference_{args.size}_{tag}{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(complete: bool) -> None:  # after every configuration, so a long run that is cut short keeps its rows
        report["complete"] = complete
        report["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        out.write_text(json.dumps(report, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="wallx_bench_") as work:
        bench = Bench(args, device, Path(work))
        report["params"] = bench.params
        report["build_s"] = round(bench.build_s, 1)
        print(f"built {args.size} WallX: {bench.params / 1e9:.3f} B parameters in {bench.build_s:.1f} s on {device}",
              flush=True)
        for mode in [m for m in args.modes.split(",") if m]:
            cams = args.fast_cams if mode == "fast" and args.fast_cams else args.cams
            for n_cams in [int(c) for c in cams.split(",") if c]:
                report["results"].extend(bench.run(CAMERAS[:n_cams], mode))
                save(complete=False)
    save(complete=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
