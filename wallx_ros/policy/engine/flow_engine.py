"""Flow-matching ("diffusion") inference for WallX with the prefix KV cache reused across denoising steps.

Stock LeRobot (``Qwen2_5_VLMoEForAction.predict``) integrates the flow with torchdiffeq's Euler solver;
every one of the 10 steps clones the whole prompt embedding and re-runs all transformer layers over
the full prompt (images + text + state + 32 action tokens), rebuilding the 4-D attention mask and
routing tokens to MoE experts with boolean indexing (host syncs) each time.

Why the prefix can be cached exactly: WallX's attention pattern is causal, plus bidirectional among
the action tokens, and the action tokens form one contiguous block at the end of the prompt. Prefix
tokens (everything before the block) therefore never attend to action tokens, so their keys/values
are the same in every step; action tokens attend to all prefix tokens and to each other. This engine
runs step 0 over the full prompt exactly as stock does (keeping every layer's keys/values), then runs
only the 32 action tokens through the layers for steps 1..9, attending to the cached prefix keys.

It uses the loaded policy's own modules and LeRobot's own helpers (``wallx_ros.lerobot.internals.wallx_internals``):
projections, RMSNorms, rotary tables, MoE experts (prefix tokens -> expert 0, action tokens -> expert 1,
as stock routes them), the action head (``step``, ``action_proj_back``, ``proprioception_proj``) and the
vision blocks. Only the glue is its own: static slicing instead of boolean indexing, a cached mask, a
preallocated KV buffer. With ``attention="eager"`` each op matches stock's eager op, and on CPU the
actions are bit-identical to stock's for the same noise (tested). ``"sdpa"`` uses
``scaled_dot_product_attention`` with the explicit mask, so it keeps the bidirectional action attention
that LeRobot's own sdpa/flash paths drop. In the action-only steps no mask is needed (action tokens see
every key), and sdpa folds the query heads that share a KV head into one head of more query rows instead
of copying the cached keys per query head (``repeat_kv``); on a float32 model sdpa and eager agree to 1e-5
(tested).

On CUDA the whole computation after the input upload (vision tower, step 0, steps 1..9) has no host
synchronisation and static shapes per prompt, so it is captured once per prompt shape as a CUDA graph
and replayed (``cuda_graphs``); the capture falls back to eager execution if it fails. That CUDA path
is not exercised by the CPU test suite.

Real-time chunking (``rtc_max_guidance`` set): ``run(..., guide=...)`` pulls each Euler step towards the running
plan (``rtc_guidance.guided_velocity``, the same function the stock path uses). In a CUDA graph the guide's
target and weights are static inputs like the noise (zero weights when a chunk has no prefix), so one graph
per prompt shape serves guided and unguided chunks.

A replayed chunk is still bound by its kernel count (~19,000 small kernels on the full model, H200):
``compile_layers`` runs one decoder layer and one vision block through ``torch.compile`` (inductor fuses
the norm / rotary / residual / activation kernels; one compiled graph per prompt phase serves all
layers, since modules and KV buffers are arguments; the action head's input and output ops are compiled
too). It costs a compile at warm-up and changes rounding
(fused bf16 arithmetic: ~7e-4 on the tiny model), so it is opt-in. It also concatenates each layer's q/k/v
and gate/up weights so each is one GEMM (+4 GiB on the full model). H200, 3 cameras: 84 -> 43 ms per chunk.
"""

# size: one inference algorithm (prefix KV cache, denoising loop, RTC guidance) over one model's internals;
#   its steps only make sense together

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from wallx_ros.core.realtime_chunking import guidance_gains
from wallx_ros.core.types import Observation
from wallx_ros.lerobot import internals, versions, wallx_model
from wallx_ros.policy.config import BackendConfig
from wallx_ros.policy.engine.flow_inputs import FlowInputBuilder, FlowInputs, PromptPlan
from wallx_ros.policy.engine.rtc_guidance import FlowGuide, guided_velocity
from wallx_ros.policy.engine.vision_tower import VisionTowerRunner
from wallx_ros.policy.errors import BackendConfigError, InferenceError

__all__ = ["ATTENTION_KINDS", "FlowEngine", "select_flow_engine"]

_LOG = logging.getLogger("wallx_ros.policy")
ATTENTION_KINDS = ("auto", "eager", "sdpa")
_MAX_GRAPHS = 4  # captured prompt shapes kept (each holds its own memory pool)


@dataclass
class _KVCache:
    """Per-layer key/value buffers for one prompt length: prefix written in step 0, action rows every step."""

    seq_len: int
    keys: list[torch.Tensor]
    values: list[torch.Tensor]


@dataclass
class _Graph:
    """A captured CUDA graph and its static input/output tensors."""

    graph: Any
    plan: PromptPlan  # keeps the captured prompt tensors alive
    cache: _KVCache  # keeps the captured key/value buffers alive
    pixel_values: torch.Tensor | None  # static inputs: pixel values, or (images_in_graph) uint8 camera images
    images: tuple[torch.Tensor, ...]
    proprioception: torch.Tensor
    agent_pos_mask: torch.Tensor
    noise: torch.Tensor
    output: torch.Tensor
    guide: FlowGuide | None  # static guidance inputs (RTC engines)


# per decoder layer: (q|k|v weight, q|k|v bias, gate|up weight per expert (text, action) or of the plain MLP)
_FusedWeights = tuple[torch.Tensor | None, torch.Tensor | None, tuple[torch.Tensor | None, torch.Tensor | None]]


def _gate_up(mlp: Any) -> torch.Tensor | None:
    if mlp.gate_proj.bias is not None or mlp.up_proj.bias is not None:
        return None
    return torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight], dim=0).detach()


def _fuse_layer(layer: Any) -> _FusedWeights:
    attn = layer.self_attn
    projections = (attn.q_proj, attn.k_proj, attn.v_proj)
    weight = torch.cat([p.weight for p in projections], dim=0).detach()
    biases = [p.bias for p in projections]
    bias = torch.cat(biases, dim=0).detach() if all(b is not None for b in biases) else None
    if any(b is not None for b in biases) and bias is None:
        return (None, None, (None, None))  # mixed biases: leave the projections alone
    if layer.mlp is not None:
        experts: tuple[torch.Tensor | None, torch.Tensor | None] = (_gate_up(layer.mlp), None)
    else:
        experts = (_gate_up(layer.moe.experts[0]), _gate_up(layer.moe.experts[1]))
    return (weight, bias, experts)


class FlowEngine:
    """Predicts WallX flow-mode action chunks for one loaded ``WallXPolicy`` (batch size 1)."""

    def __init__(self, policy: Any, preprocessor: Any, attention: str = "auto", cuda_graphs: bool = True,
                 compile_layers: bool = False, compile_backend: str = "inductor",
                 images_in_graph: bool | None = None, rtc_max_guidance: float | None = None) -> None:
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        reason = wallx_model.preprocessor_passes_images_through(preprocessor)
        if reason:
            raise InferenceError(f"fast_flow cannot run this checkpoint: {reason}; use engine 'stock'")
        self.policy = policy
        model = policy.model
        self._model = model
        self._lm = model.model
        self._head = model.action_preprocessor
        self._internals = internals.wallx_internals()
        self.device = torch.device(str(policy.config.device))
        if attention == "auto":
            attention = "sdpa" if self.device.type == "cuda" else "eager"
        self.attention = attention
        self.inputs = FlowInputBuilder(policy, preprocessor)
        self.vision = VisionTowerRunner(model.visual, attention, compile_blocks=compile_layers,
                                        compile_backend=compile_backend)
        cfg = model.config
        self._num_kv = int(cfg.num_key_value_heads)
        self._head_dim = int(cfg.hidden_size) // int(cfg.num_attention_heads)
        self._hidden = int(cfg.hidden_size)
        self._dtype = self._lm.embed_tokens.weight.dtype
        self.steps = self._internals.flow_steps
        self.horizon = int(policy.config.chunk_size)
        self.max_action_dim = int(policy.config.max_action_dim)
        self._cache: _KVCache | None = None
        self._times = torch.linspace(0, 1, self.steps + 1, device=self.device, dtype=torch.float32)
        # real-time chunking: guidance gain per Euler step (host floats: no device sync inside the flow)
        self.rtc_max_guidance = rtc_max_guidance
        self._gains = guidance_gains(self._times.cpu().tolist(), rtc_max_guidance) if rtc_max_guidance else []
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        # resize / normalise / patchify the uploaded camera images as part of the flow (inside the CUDA graph)
        # rather than with ~40 eager launches per camera in prepare(); default: wherever graphs run
        self.images_in_graph = self.cuda_graphs if images_in_graph is None else images_in_graph
        self._graphs: dict[tuple[Any, ...], _Graph] = {}
        # torch.compile of one decoder layer (fuses the norm / rotary / residual / activation kernels that
        # make a chunk launch-bound); shared by all layers: the layer's modules and KV buffers are arguments
        self.compile_layers = compile_layers
        # with compile_layers: q/k/v and each expert's gate/up projections concatenated, one GEMM each
        # (the action steps run ~2,000 tiny GEMMs per chunk otherwise); the copies cost GPU memory
        # (full WALL-OSS: +4 GiB, 12.2 GiB peak instead of 8.2)
        self._fused: list[_FusedWeights | None] = [
            _fuse_layer(layer) if compile_layers else None for layer in self._lm.layers]
        self._run_layer = self._layer
        self._run_head_in = self._head_in
        self._run_head_out = self._head_out
        if compile_layers:  # the action head's ~20 small ops per step fuse too
            self._run_layer = torch.compile(self._layer, dynamic=False, backend=compile_backend)
            self._run_head_in = torch.compile(self._head_in, dynamic=False, backend=compile_backend)
            self._run_head_out = torch.compile(self._head_out, dynamic=False, backend=compile_backend)

    # -- one transformer layer ----------------------------------------------------------------------------
    def _attention(self, attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, keys: torch.Tensor,
                   values: torch.Tensor, start: int, mask: torch.Tensor | None,
                   fused: _FusedWeights | None = None) -> torch.Tensor:
        """Self-attention of ``x`` (tokens start..start+n of the prompt) against this layer's cached keys
        0..start+n (``keys``/``values``: the layer's KV buffers, rows start..start+n written here)."""
        bsz, q_len, _ = x.shape
        if fused is not None and fused[0] is not None:  # one GEMM for q, k and v
            qkv = torch.nn.functional.linear(x, fused[0], fused[1])
            q_size = int(attn.q_proj.weight.shape[0])
            kv_size = (qkv.shape[-1] - q_size) // 2
            q, k, v = qkv[..., :q_size], qkv[..., q_size:q_size + kv_size], qkv[..., q_size + kv_size:]
            q = q.reshape(bsz, q_len, -1, self._head_dim).transpose(1, 2)
            k = k.reshape(bsz, q_len, -1, self._head_dim).transpose(1, 2)
            v = v.reshape(bsz, q_len, -1, self._head_dim).transpose(1, 2)
        else:
            q = attn.q_proj(x).view(bsz, q_len, -1, self._head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(bsz, q_len, -1, self._head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(bsz, q_len, -1, self._head_dim).transpose(1, 2)
        rotate_half = self._internals.rotate_half  # stock's rotary (cos/sin: mrope sections pre-selected)
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        end = start + q_len
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        groups = int(attn.num_key_value_groups)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        if self.attention == "sdpa" and mask is None and groups > 1:
            # grouped-query attention without copying the keys: the `groups` query heads that share a KV head
            # (repeat_kv's head h -> KV head h // groups) become one head of groups * q_len query rows
            grouped = q.reshape(bsz, self._num_kv, groups * q_len, self._head_dim)
            out = sdpa(grouped, keys[:, :, :end], values[:, :, :end]).reshape(bsz, -1, q_len, self._head_dim)
        else:
            k_all = self._internals.repeat_kv(keys[:, :, :end], groups)
            v_all = self._internals.repeat_kv(values[:, :, :end], groups)
            if self.attention == "eager":  # stock eager, op for op
                out = self._internals.eager_attention(q, k_all, v_all, attn, self._head_dim, mask)
            else:
                out = sdpa(q, k_all, v_all, attn_mask=mask)
        out = out.transpose(1, 2).contiguous().reshape(bsz, q_len, -1)
        return attn.o_proj(out)  # type: ignore[no-any-return]

    @staticmethod
    def _expert(expert: Any, dim: int, x: torch.Tensor, gate_up: torch.Tensor | None = None) -> torch.Tensor:
        if gate_up is not None:  # gated MLP with gate and up projections in one GEMM
            gate, up = torch.nn.functional.linear(x[..., :dim], gate_up).chunk(2, dim=-1)
            out = expert.down_proj(expert.act_fn(gate) * up)
        else:
            out = expert(x[..., :dim])
        if out.shape[-1] != x.shape[-1]:  # stock scatters into zeros when an expert is narrower
            out = torch.nn.functional.pad(out, (0, x.shape[-1] - out.shape[-1]))
        return out  # type: ignore[no-any-return]

    def _mlp(self, layer: Any, x: torch.Tensor, split: int | None, fused: _FusedWeights | None = None) -> torch.Tensor:
        """MoE MLP: tokens before ``split`` -> expert 0 (text), from ``split`` on -> expert 1 (action)."""
        gate_up = fused[2] if fused is not None else (None, None)
        if layer.mlp is not None:
            x = x.to(layer.mlp.down_proj.weight.dtype)
            return self._expert(layer.mlp, x.shape[-1], x, gate_up[0])
        moe = layer.moe
        x = x.to(moe.experts[0].down_proj.weight.dtype)
        dims = moe.dim_inputs
        if split is None:
            return self._expert(moe.experts[1], dims[1], x, gate_up[1])
        prefix = self._expert(moe.experts[0], dims[0], x[:, :split], gate_up[0])
        actions = self._expert(moe.experts[1], dims[1], x[:, split:], gate_up[1])
        return torch.cat([prefix, actions], dim=1)

    def _layer(self, layer: Any, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, keys: torch.Tensor,
               values: torch.Tensor, start: int, mask: torch.Tensor | None, split: int | None,
               fused: _FusedWeights | None = None) -> torch.Tensor:
        """One decoder layer. Takes the layer's KV buffers as tensors (not an index) so that one compiled
        version serves all layers (``compile_layers``)."""
        residual = h
        x = layer.input_layernorm(h.to(layer.input_layernorm.weight.dtype))
        x = x.to(layer.self_attn.q_proj.weight.dtype)
        h = residual + self._attention(layer.self_attn, x, cos, sin, keys, values, start, mask, fused)
        residual = h
        x = layer.post_attention_layernorm(h.to(layer.post_attention_layernorm.weight.dtype))
        return residual + self._mlp(layer, x, split, fused)

    # -- the flow ------------------------------------------------------------------------------------------
    def _kv(self, seq_len: int) -> _KVCache:
        if self._cache is None or self._cache.seq_len != seq_len:
            shape = (1, self._num_kv, seq_len, self._head_dim)
            n = len(self._lm.layers)
            make = [torch.empty(shape, dtype=self._dtype, device=self.device) for _ in range(2 * n)]
            self._cache = _KVCache(seq_len, make[:n], make[n:])
        return self._cache

    def _prefix_embeddings(self, inputs: FlowInputs) -> torch.Tensor:
        plan = inputs.plan
        embeds = plan.text_embeds.clone()
        pixels = inputs.pixel_values
        if pixels is None:
            pixels = self.inputs.pixel_values(plan, inputs.images)
        image = self.vision(pixels, self.vision.geometry(plan.grid))
        embeds[0].index_copy_(0, plan.image_positions, image.to(embeds.dtype))
        proprio = inputs.proprioception.to(embeds.dtype)
        proprio_mask = inputs.agent_pos_mask.to(embeds.dtype)
        state = self._internals.proprioception_proj(self._head, proprio, proprio_mask)
        state = state.to(torch.bfloat16).reshape(-1, embeds.shape[-1])  # stock casts to bf16 before inserting
        embeds[0].index_copy_(0, plan.propri_positions, state.to(embeds.dtype))
        return embeds

    def _velocity(self, plan: PromptPlan, embeds: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                  first: bool) -> torch.Tensor:
        start = plan.action_start
        cache = self._cache
        assert cache is not None
        action = self._run_head_in(t, y, embeds.dtype)
        if first:  # the whole prompt, as stock: fills the prefix keys/values
            h = torch.cat([embeds[:, :start], action], dim=1)
            mask = plan.additive_mask if self.attention == "eager" else plan.allowed
            for layer, keys, values, fused in zip(self._lm.layers, cache.keys, cache.values, self._fused, strict=True):
                h = self._run_layer(layer, h, plan.cos, plan.sin, keys, values, 0, mask, start, fused)
            h = h[:, start:]
        else:  # action tokens only, against the cached prefix
            cos, sin = plan.cos[:, :, start:], plan.sin[:, :, start:]  # (1, 1, S, D): rows of the action tokens
            amask: torch.Tensor | None = None
            if not plan.action_rows_unmasked:
                full = plan.additive_mask if self.attention == "eager" else plan.allowed
                amask = full[:, :, start:]
            h = action
            for layer, keys, values, fused in zip(self._lm.layers, cache.keys, cache.values, self._fused, strict=True):
                h = self._run_layer(layer, h, cos, sin, keys, values, start, amask, None, fused)
        return self._run_head_out(h)

    def _head_in(self, t: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Action-token embeddings of the noisy chunk ``y`` at flow time ``t`` (the action head's ``step``)."""
        action = self._head.step(timestep=t.unsqueeze(0).repeat(y.shape[0]), noisy_action=y,
                                 dof_mask=self.inputs.dof_mask)
        return action.reshape(-1, self._hidden).to(dtype=dtype).view(1, -1, self._hidden)  # type: ignore[no-any-return]

    def _head_out(self, h: torch.Tensor) -> torch.Tensor:
        """Velocity (1, chunk, action_dim) from the last layer's action-token states."""
        pred = self._head.action_proj_back(self._lm.norm(h).to(torch.float32))
        return pred.reshape(1, self.horizon, self.max_action_dim)  # type: ignore[no-any-return]

    def _denoise(self, inputs: FlowInputs, noise: torch.Tensor, guide: FlowGuide | None = None) -> torch.Tensor:
        plan = inputs.plan
        self._kv(plan.seq_len)
        embeds = self._prefix_embeddings(inputs)
        y = noise
        for i in range(self.steps):  # torchdiffeq's Euler step: y += (t1 - t0) * f(t0, y)
            t0, t1 = self._times[i], self._times[i + 1]
            velocity = self._velocity(plan, embeds, t0, y, first=i == 0)
            if guide is not None:
                velocity = guided_velocity(velocity, y, t0, self._gains[i], guide)
            y = y + (t1 - t0) * velocity
        return y

    def _empty_guide(self) -> FlowGuide:
        shape = (1, self.horizon, self.max_action_dim)
        zeros = torch.zeros(shape, dtype=torch.float32, device=self.device)
        return FlowGuide(zeros, zeros.clone(), float(self.rtc_max_guidance or 1.0))

    # -- CUDA graphs (CUDA only; not exercised by the CPU tests) -------------------------------------------
    def _graph_for(self, inputs: FlowInputs, noise: torch.Tensor) -> _Graph | None:
        key = (id(inputs.plan),)  # the graph reads the plan's tensors: one graph per live plan
        graph = self._graphs.get(key)
        if graph is not None:
            return graph
        try:
            pixels = None if inputs.pixel_values is None else inputs.pixel_values.clone()
            static = FlowInputs(inputs.plan, pixels, tuple(image.clone() for image in inputs.images),
                                inputs.proprioception.clone(), inputs.agent_pos_mask.clone())
            static_noise = noise.clone()
            static_guide = self._empty_guide() if self.rtc_max_guidance else None
            stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside capture (allocator, cuBLAS handles)
                    self._denoise(static, static_noise, static_guide)
            torch.cuda.current_stream().wait_stream(stream)
            cuda_graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(cuda_graph):
                output = self._denoise(static, static_noise, static_guide)
        except RuntimeError as err:
            _LOG.warning("CUDA graph capture failed (%s); running the flow engine eagerly", err)
            self.cuda_graphs = False
            return None
        assert self._cache is not None
        graph = _Graph(cuda_graph, inputs.plan, self._cache, static.pixel_values, static.images,
                       static.proprioception, static.agent_pos_mask, static_noise, output, static_guide)
        self._graphs[key] = graph
        while len(self._graphs) > _MAX_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))
        return graph

    # -- public ---------------------------------------------------------------------------------------------
    def prepare(self, observation: Observation) -> FlowInputs:
        """Model inputs for ``observation`` (on the device)."""
        return self.inputs.build(observation, images_only=self.images_in_graph)

    @torch.no_grad()
    def run(self, inputs: FlowInputs, noise: torch.Tensor | None = None,
            guide: FlowGuide | None = None) -> torch.Tensor:
        """Normalised actions (1, chunk, action_dim) for ``inputs``. Noise is drawn as stock draws it
        (``torch.randn`` on the device) unless given, so a seeded run matches stock. ``guide``: real-time
        chunking towards the running plan (needs an engine made with ``rtc_max_guidance``)."""
        if guide is not None and not self.rtc_max_guidance:
            raise InferenceError("this flow engine was made without real-time chunking (rtc_max_guidance)")
        if noise is None:
            noise = torch.randn(size=(1, self.horizon, self.max_action_dim), dtype=torch.float32, device=self.device)
        if self.cuda_graphs:
            graph = self._graph_for(inputs, noise)
            if graph is not None:
                if graph.pixel_values is not None and inputs.pixel_values is not None:
                    graph.pixel_values.copy_(inputs.pixel_values)
                for static_image, image in zip(graph.images, inputs.images, strict=True):
                    static_image.copy_(image)
                graph.proprioception.copy_(inputs.proprioception)
                graph.agent_pos_mask.copy_(inputs.agent_pos_mask)
                graph.noise.copy_(noise)
                if graph.guide is not None and guide is not None:
                    graph.guide.target.copy_(guide.target)
                    graph.guide.weights.copy_(guide.weights)
                elif graph.guide is not None:  # no prefix: zero weights make the guidance term exactly 0
                    graph.guide.weights.zero_()
                graph.graph.replay()
                actions = graph.output.clone()
            else:
                actions = self._denoise(inputs, noise, guide)
        else:
            actions = self._denoise(inputs, noise, guide)
        return actions[:, :, : self._action_dim()]

    def _action_dim(self) -> int:
        return int(self.policy.config.output_features["action"].shape[0])

    def predict(self, observation: Observation, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(self.prepare(observation), noise)


def select_flow_engine(config: BackendConfig, policy: Any, preprocessor: Any, mode: str) -> FlowEngine | None:
    """The flow engine ``config.engine`` asks for, or None for LeRobot's stock ``predict_action_chunk``.

    ``auto`` picks fast_flow wherever it can run (flow mode, validated LeRobot line, images passed
    through by the preprocessor) and stock otherwise; ``fast_flow`` raises if it cannot run.
    """
    if config.engine == "stock":
        return None
    reason = None
    if mode != "diffusion":
        reason = f"fast_flow computes flow-mode chunks only (mode is {mode!r}); fast mode runs LeRobot's generate"
    reason = reason or versions.flow_engine_unsupported_reason()
    reason = reason or wallx_model.preprocessor_passes_images_through(preprocessor)
    if reason:
        if config.engine == "fast_flow" and mode == "diffusion":
            raise BackendConfigError(f"engine 'fast_flow' cannot run here: {reason}. Use engine 'stock' or 'auto'.")
        _LOG.info("using LeRobot's stock inference: %s", reason)
        return None
    return FlowEngine(policy, preprocessor, attention=config.flow_attention, cuda_graphs=config.cuda_graphs,
                      compile_layers=config.flow_compile,
                      rtc_max_guidance=config.rtc_max_guidance if config.rtc else None)
