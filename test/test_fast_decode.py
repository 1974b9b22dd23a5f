"""Fast mode with fast_decode's decode steps generates exactly stock LeRobot's tokens and chunks.

Real LeRobot WallX fast mode on the tiny fast checkpoint (random weights, Qwen's 151k vocabulary), no mocks:
one backend runs stock generation (engine=stock), the other the same generation with fast_decode's
single-token forwards (engine=auto). ``generate`` is wrapped only to record its per-step logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wallx_ros.core.types import Observation
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS
from wallx_ros.policy.engine.fast_decode import fast_decode_line_reason
from wallx_ros.policy.errors import InferenceError

UNSUPPORTED = fast_decode_line_reason()
pytestmark = pytest.mark.skipif(UNSUPPORTED is not None, reason=f"{UNSUPPORTED}; fast mode runs stock generation there")


def observation(seed: int) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(images={c: rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=rng.normal(size=14).astype(np.float32), instruction="stack the cups", stamp_ns=seed)


def _record_generation(backend: Any) -> list[tuple[Any, Any]]:
    """Wrap the model's generate() to keep (sequence, per-step raw logits); predict() still gets the sequence."""
    model = backend._policy.model
    original = type(model).generate.__get__(model)  # the real one, also when wrapped before
    records: list[tuple[Any, Any]] = []

    def generate(*args: Any, **kwargs: Any) -> Any:
        import torch

        out = original(*args, **kwargs, output_logits=True, return_dict_in_generate=True)
        records.append((out.sequences.clone(), torch.stack(out.logits, 1)[0].float()))
        return out.sequences

    model.generate = generate
    return records


@pytest.fixture(scope="module")
def pair(tiny_fast_checkpoint: Path):
    def load(engine: str, **kw: Any) -> Any:
        return load_backend(BackendConfig(checkpoint_dir=tiny_fast_checkpoint, allow_random_weights=True, seed=0,
                                          engine=engine, **kw))

    return load, load("stock", fast_action_tokens_only=True), load("auto", fast_action_tokens_only=True)


def _compare(stock: Any, fast: Any, obs: Observation) -> tuple[Any, Any]:
    import torch

    stock_records, fast_records = _record_generation(stock), _record_generation(fast)
    expected = stock.predict_chunk(obs).actions
    got = fast.predict_chunk(obs).actions
    (seq_s, logits_s), (seq_f, logits_f) = stock_records[-1], fast_records[-1]
    assert torch.equal(seq_f, seq_s)
    allowed = torch.isfinite(logits_f[0])  # fast_decode gives suppressed tokens -inf without computing them
    assert torch.equal(logits_f[:, allowed], logits_s[:, allowed])
    np.testing.assert_array_equal(got, expected)
    return seq_s, logits_s


@pytest.mark.parametrize("seed", [3, 4])
def test_same_tokens_logits_and_chunk_as_stock(pair, seed: int) -> None:
    _, stock, fast = pair
    assert stock.engine == "stock" and fast.engine == "fast_decode"
    decoder = fast._decoder
    steps_before, runs_before = decoder.decode_steps, decoder.greedy_runs
    suppressed = fast._policy.model.generation_config.suppress_tokens  # the backend's action-tokens-only list
    _, logits = _compare(stock, fast, observation(seed))
    generated = logits.shape[0]
    assert decoder.decode_steps - steps_before == generated - 1  # every step after the prefill was ours
    assert decoder.greedy_runs == runs_before + 1  # in greedy_decode's loop, not generate's
    # the random tiny model repeats its greedy token, but every step's logits differ (position, cache)
    assert bool((logits[1:] != logits[:-1]).any(dim=1).all())
    # restored after the prediction: stock's forward and the backend's suppress list
    model = fast._policy.model
    assert "forward" not in vars(model) and "_sample" not in vars(type(model))  # stock's class again
    # (the same list object, suppressing most of the vocabulary: 151k Qwen tokens on 0.4.4, 336 on 0.6's tiny)
    assert model.generation_config.suppress_tokens is suppressed
    assert len(suppressed) > model.lm_head.weight.shape[0] // 2
    # a nested activation (e.g. a second decoder on the same model) leaves the outer one in charge
    from wallx_ros.policy.engine.fast_decode import FastDecoder

    with FastDecoder(fast._policy).active():
        np.testing.assert_array_equal(fast.predict_chunk(observation(seed)).actions,
                                      stock.predict_chunk(observation(seed)).actions)
    assert "forward" not in vars(model) and model.generation_config.suppress_tokens is suppressed


def test_unrestricted_vocabulary_same_tokens(pair) -> None:
    """Without the action-token restriction the engine projects the whole vocabulary: logits equal everywhere."""
    load, _, _ = pair
    stock = load("stock", fast_min_new_tokens=100)
    fast = load("auto", fast_min_new_tokens=100)
    records = _record_generation(fast)
    stock_records = _record_generation(stock)
    for backend in (stock, fast):  # random weights: the unrestricted tokens may not decode to actions
        try:
            backend.predict_chunk(observation(5))
        except InferenceError:
            pass
    import torch

    assert torch.equal(records[-1][0], stock_records[-1][0])
    assert torch.equal(records[-1][1], stock_records[-1][1])
    assert fast._decoder.decode_steps == 99


def test_only_end_of_sequence_allowed_is_still_a_clear_error(pair) -> None:
    """The backend's error for a generation without action tokens survives the engine."""
    _, _, fast = pair
    model = fast._policy.model
    saved = model.generation_config.suppress_tokens
    eos = model.processor.tokenizer.eos_token_id
    model.generation_config.suppress_tokens = [i for i in range(model.lm_head.weight.shape[0]) if i != eos]
    try:
        with pytest.raises(InferenceError, match="no decodable action tokens"):
            fast.predict_chunk(observation(6))
    finally:
        model.generation_config.suppress_tokens = saved


def test_lean_loop_runs_and_keeps_stocks_tokens_when_reading_back_late(pair) -> None:
    """greedy_decode's loop replaces generate's per-token loop (``greedy_runs``), and reading the tokens back
    only every 8 steps (as on CUDA) still gives stock's sequence and logits: the steps computed past the
    end-of-sequence are dropped. Only end-of-sequence allowed, 11 new tokens at least: the first 11 tokens
    have every allowed row at -inf (token 0, as stock's argmax picks), the 12th ends mid-interval."""
    import torch

    from wallx_ros.policy.engine.fast_decode import FastDecoder

    load, _, _ = pair
    stock = load("stock", fast_min_new_tokens=11)
    fast = load("auto", fast_min_new_tokens=11)
    decoder = fast._decoder = FastDecoder(fast._policy, eos_check_every=8)
    eos = fast._policy.model.processor.tokenizer.eos_token_id
    vocab = fast._policy.model.lm_head.weight.shape[0]
    only_eos = [i for i in range(vocab) if i != eos]
    records, stock_records = _record_generation(fast), _record_generation(stock)
    for backend in (stock, fast):
        model = backend._policy.model
        saved = model.generation_config.suppress_tokens
        model.generation_config.suppress_tokens = only_eos
        try:
            with pytest.raises(InferenceError, match="no decodable action tokens"):
                backend.predict_chunk(observation(7))
        finally:
            model.generation_config.suppress_tokens = saved
    seq_f, logits_f = records[-1]
    seq_s, logits_s = stock_records[-1]
    assert torch.equal(seq_f, seq_s) and int(seq_s[0, -1]) == eos and logits_s.shape[0] == 12
    allowed = torch.isfinite(logits_f[-1])
    assert torch.equal(logits_f[:, allowed], logits_s[:, allowed])
    # token i comes from decode step i; read back after step 15 (16 tokens), ended at token 11: 4 steps dropped
    assert decoder.greedy_runs == 1 and decoder.overshoot_steps == 4


@pytest.mark.parametrize("lean_loop", [False, True])
def test_fixed_length_kv_buffers_give_stocks_tokens(pair, monkeypatch: pytest.MonkeyPatch, lean_loop: bool) -> None:
    """The CUDA-graph decode step (``static_decode``: fixed-length key/value buffers, masked attention over
    them), run eagerly here: stock's tokens, and logits equal to stock's up to the reduction order of the
    longer attention sums. In generate's loop, short buffers (quantum 8) make the step outgrow them
    mid-generation and refill from the transformers cache; greedy_decode's loop sizes them for the whole
    chunk at once. Each chunk's prefill refills them (stale keys would change the tokens)."""
    import torch

    from wallx_ros.policy.engine import static_decode
    from wallx_ros.policy.engine.fast_decode import FastDecoder

    monkeypatch.setattr(static_decode, "_LENGTH_QUANTUM", 8)
    load, _, _ = pair
    fast = load("auto", fast_action_tokens_only=True, fast_min_new_tokens=24)
    stock_long = load("stock", fast_action_tokens_only=True, fast_min_new_tokens=24)
    decoder = fast._decoder = FastDecoder(fast._policy, static_cache=True, lean_loop=lean_loop)
    fills: list[tuple[int, int]] = []  # (cached keys copied in, buffer length)
    fill = static_decode.StaticDecodeStep.fill

    def counting_fill(step: Any, cached_kv: Any, cached: int) -> None:
        fills.append((cached, step.length))
        fill(step, cached_kv, cached)

    monkeypatch.setattr(static_decode.StaticDecodeStep, "fill", counting_fill)
    for seed in (3, 4):
        stock_records, fast_records = _record_generation(stock_long), _record_generation(fast)
        expected = stock_long.predict_chunk(observation(seed)).actions
        got = fast.predict_chunk(observation(seed)).actions
        (seq_s, logits_s), (seq_f, logits_f) = stock_records[-1], fast_records[-1]
        assert logits_s.shape[0] >= 24
        assert torch.equal(seq_f, seq_s)
        allowed = torch.isfinite(logits_f[0])
        torch.testing.assert_close(logits_f[:, allowed], logits_s[:, allowed], rtol=0, atol=1e-3)
        np.testing.assert_array_equal(got, expected)
    prompt = fills[0][0]
    assert [cached for cached, _ in fills].count(prompt) == 2  # after each chunk's prefill
    assert decoder.decode_steps == 2 * (logits_s.shape[0] - 1)
    assert decoder.greedy_runs == (2 if lean_loop else 0)
    if lean_loop:  # sized for the chunk at once: no refill mid-generation
        assert len(fills) == 2 and all(length >= prompt + logits_s.shape[0] for _, length in fills)
    else:  # chunk 1: filled after the prefill, then again each time the buffers were outgrown (every 8-16 tokens)
        assert len(fills) >= 2 * 3 and all(cached < length for cached, length in fills)
