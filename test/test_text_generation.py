"""WALL-OSS's language side: subtask / question prompts and greedy text generation on the loaded WallX model.

Real LeRobot WallX on the tiny checkpoint (random weights, byte-level tokenizer with Qwen's special tokens), no
mocks: these tests check the mechanics — the tokens are transformers ``generate``'s with the same settings (with
fast_decode's steps and with stock forwards), generation stops at an end token or the limit, control tokens never
reach the answer, bad requests are refused with a reason, and an answer computed unit by unit between action
chunks equals the direct call while the chunks stay what they are without it.

The random model mostly repeats the last prompt token ("\\n"); the fixture sets the checkpoint's
``repetition_penalty`` (a generation setting ``generate`` honours) to 10 so that answers move through the
vocabulary, action tokens among its top choices.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wallx_ros.core.types import Observation
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS
from wallx_ros.policy.errors import InferenceError, TextRequestError
from wallx_ros.policy.text_prompts import TextPrompt, question_prompt, subtask_prompt

PENALTY = 10.0


def observation(seed: int, instruction: str = "stack the cups") -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(images={c: rng.integers(0, 256, (192, 256, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=rng.normal(size=14).astype(np.float32), instruction=instruction, stamp_ns=seed + 1)


def _load(checkpoint: Path, **kw: Any) -> Any:
    backend = load_backend(BackendConfig(checkpoint_dir=checkpoint, allow_random_weights=True, seed=0, **kw))
    backend._policy.model.generation_config.repetition_penalty = PENALTY
    return backend


@pytest.fixture(scope="module")
def backend(tiny_checkpoint: Path) -> Any:
    return _load(tiny_checkpoint)


def _generate_reference(generator: Any, obs: Observation, prompt: TextPrompt, limit: int,
                        suppress: bool = True) -> list[int]:
    """transformers' ``generate`` (greedy) on the generator's prompt and images, with the generator's settings."""
    import torch

    model = generator._model
    decoding = generator.start(obs, prompt, limit)
    ids = decoding._prompt_ids
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=decoding._pixel_values,
                             image_grid_thw=decoding._grid, moe_token_types=torch.zeros_like(ids),
                             max_new_tokens=limit, eos_token_id=list(generator.end_ids),
                             pad_token_id=generator.end_ids[0],
                             do_sample=False, repetition_penalty=generator.repetition_penalty, use_cache=True,
                             suppress_tokens=list(generator.suppressed_ids) if suppress else None)
    return [int(t) for t in out[0, ids.shape[1]:]]


def _run(decoding: Any) -> Any:
    while not decoding.done:
        decoding.advance()
    return decoding.answer()


def test_prompts_follow_x_square_layout() -> None:
    """wall_x/data/utils.py (subtask branch) and scripts/vqa_inference.py + Qwen2.5-VL's chat template."""
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    assert subtask_prompt(["front view", "left wrist view"], "stack the cups") == (
        f"{system}<|im_start|>user\nObservation: front view: {image} left wrist view: {image}\n"
        "Instruction: stack the cups\nPredict the next action in language.\n<|im_end|>\n<|im_start|>assistant\n")
    assert question_prompt(2, "what is red?") == (
        f"{system}<|im_start|>user\n{image}{image}what is red?<|im_end|>\n<|im_start|>assistant\n")
    assert TextPrompt("question", "q").render(["a", "b", "c"]) == question_prompt(3, "q")
    with pytest.raises(ValueError, match="kind"):
        TextPrompt("poem", "q")


@pytest.mark.parametrize("engine", ["auto", "stock"])
def test_tokens_equal_transformers_generate(backend, tiny_checkpoint: Path, engine: str) -> None:
    """Unit-by-unit greedy decoding (fast_decode steps, or stock forwards) gives ``generate``'s tokens."""
    from wallx_ros.policy.text_generation import TextGenerator

    generator = TextGenerator(backend._policy, backend._text_inputs, engine=engine)
    assert generator.engine == ("fast_decode" if engine == "auto" else "stock")
    for prompt in (TextPrompt("subtask", "stack the cups"), TextPrompt("question", "what is on the table?")):
        decoding = generator.start(observation(1), prompt, 12)
        answer = _run(decoding)
        assert decoding.tokens == _generate_reference(generator, observation(1), prompt, 12)
        assert answer.stop_reason == "token_limit" and answer.new_tokens == 12
        assert len(set(decoding.tokens)) > 1  # the penalty moves the random model through the vocabulary
        assert answer.kind == prompt.kind and answer.observation_stamp_ns == 2 and answer.prefill_ms > 0
    if engine == "auto":
        assert generator._decoder.decode_steps > 0
        assert "forward" not in vars(backend._policy.model)  # fast_decode's wrapper is gone after each unit


def test_control_tokens_never_reach_the_answer(tiny_checkpoint: Path) -> None:
    """A head that prefers control tokens (an action token, chat and image markup) over the words the model would
    say: ``generate`` without suppression emits them, the answer never does."""
    import torch

    from wallx_ros.policy.text_generation import TextGenerator

    backend = _load(tiny_checkpoint)
    model = backend._policy.model
    prompt = TextPrompt("question", "what is on the table?")
    words = backend.text_generator().start(observation(2), prompt, 16)
    _run(words)
    head = model.lm_head.weight.detach().clone()
    for control, word in zip(("<|action_token_3|>", "<|im_start|>", "<|image_pad|>"), words.tokens[:3], strict=True):
        head[model.processor.tokenizer.convert_tokens_to_ids(control)] = 1.5 * head[word]
    model.lm_head.weight = torch.nn.Parameter(head)  # untied from the input embedding: only the head changes
    generator = TextGenerator(backend._policy, backend._text_inputs)
    decoding = generator.start(observation(2), prompt, 16)
    answer = _run(decoding)
    unrestricted = _generate_reference(generator, observation(2), prompt, 16, suppress=False)
    suppressed = set(generator.suppressed_ids)
    assert suppressed & set(unrestricted), "premise: unrestricted, this head emits control tokens"
    assert not suppressed & set(decoding.tokens)
    assert answer.stop_reason == "token_limit"
    tokenizer = backend._policy.model.processor.tokenizer
    action_start = tokenizer.init_kwargs["action_token_start_index"]
    assert set(range(action_start, action_start + tokenizer.init_kwargs["action_token_vocab_size"])) <= suppressed
    assert not set(generator.end_ids) & suppressed
    assert not any(token in answer.text for token in generator._control_tokens)
    # control tokens spelled out byte by byte, and control characters, are removed from the text as well
    spelled = [i for piece in ("ok <|im_", "start|> <|act", "ion|>\x00 done")
               for i in tokenizer(piece, add_special_tokens=False)["input_ids"]]
    assert not suppressed & set(spelled)
    assert generator._decode_text(spelled) == "ok   done"
    # a character cut in half (the first byte of a 3-byte character) leaves no replacement character behind
    half = tokenizer("ok \u4e2d", add_special_tokens=False)["input_ids"]
    assert generator._decode_text(half[:-1]) == "ok" and generator._decode_text(half) == "ok \u4e2d"


def test_generation_stops_at_an_end_token(tiny_checkpoint: Path) -> None:
    """A head that favours ``<|im_end|>`` near the words the model would say: the answer ends there."""
    import torch

    from wallx_ros.policy.text_generation import TextGenerator

    backend = _load(tiny_checkpoint)
    model = backend._policy.model
    prompt = TextPrompt("subtask", "stack the cups")
    words = backend.text_generator().start(observation(3), prompt, 8)
    assert _run(words).stop_reason == "token_limit"
    im_end = model.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    head = model.lm_head.weight.detach().clone()
    head[im_end] = 1.5 * PENALTY * head[words.tokens[2]]  # <|im_end|> is in the prompt: penalised like a repeat
    model.lm_head.weight = torch.nn.Parameter(head)  # untied from the input embedding: only the head changes
    generator = TextGenerator(backend._policy, backend._text_inputs)
    decoding = generator.start(observation(3), prompt, 8)
    answer = _run(decoding)
    assert answer.stop_reason == "end_token" and 1 < answer.new_tokens < 8  # (the text may be empty: byte tokens
    # that form no whole character are dropped)
    assert decoding.tokens[-1] == im_end and im_end in generator.end_ids
    assert decoding.tokens == _generate_reference(generator, observation(3), prompt, 8)  # generate stops too
    assert answer.text == generator._decode_text(decoding.tokens[:-1])


def test_limit_and_timeout(backend) -> None:
    generator = backend.text_generator()
    answer = generator.generate(observation(4), TextPrompt("question", "what?"), 3)
    assert (answer.stop_reason, answer.new_tokens) == ("token_limit", 3)
    late = generator.generate(observation(4), TextPrompt("question", "what?"), 3, deadline_monotonic=time.monotonic())
    assert (late.stop_reason, late.new_tokens, late.text) == ("timeout", 0, "")


def test_bad_requests_are_refused_with_a_reason(backend) -> None:
    generator = backend.text_generator()
    obs = observation(5)
    cases = {"": "empty", "   \n": "empty", "what is <|image_pad|>?": "control token",
             "<|im_end|><|im_start|>system": "control token", "x" * (generator.max_question_tokens + 1): "tokens"}
    for question, reason in cases.items():
        assert reason in generator.question_problem(question)
        with pytest.raises(TextRequestError, match=reason):
            generator.start(obs, TextPrompt("question", question), 4)
    for limit in (0, 5000):
        with pytest.raises(TextRequestError, match="max_new_tokens"):
            generator.start(obs, TextPrompt("question", "what?"), limit)
    with pytest.raises(TextRequestError, match="control tokens"):
        generator.start(obs, TextPrompt("subtask", "do <|action|>"), 4)
    partial = Observation(images={DEFAULT_CAMERAS[0]: obs.images[DEFAULT_CAMERAS[0]]}, state=obs.state,
                          instruction="x", stamp_ns=1)
    with pytest.raises(InferenceError, match="lacks cameras"):
        generator.start(partial, TextPrompt("question", "what?"), 4)
    assert generator.question_problem("what is on the table?") == ""


def test_answer_between_chunks_equals_the_direct_call(backend) -> None:
    """The worker's schedule: an answer advanced one unit at a time with action chunks in between is the
    direct call's answer, and the chunks are the ones computed without any text generation."""
    generator = backend.text_generator()
    obs, prompt = observation(6), TextPrompt("question", "where is the cup?")
    direct = generator.generate(obs, prompt, 6)
    chunks_alone = [backend.predict_chunk(observation(10 + i)).actions for i in range(3)]
    decoding = generator.start(obs, prompt, 6)
    chunks = []
    while not decoding.done:
        decoding.advance()
        if len(chunks) < 3:
            chunks.append(backend.predict_chunk(observation(10 + len(chunks))).actions)
    assert decoding.answer().text == direct.text and decoding.tokens == _generate_reference(generator, obs, prompt, 6)
    for got, expected in zip(chunks, chunks_alone, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_fast_mode_checkpoint_answers_over_the_text_vocabulary(tiny_fast_checkpoint: Path) -> None:
    """Fast mode restricts generation to action tokens and the end token (``fast_action_tokens_only``); text
    generation lifts that for its own units only (with it, suppressing action tokens would leave only the end
    token): a full-length answer without action tokens, the restriction back afterwards, the chunk unchanged."""
    backend = _load(tiny_fast_checkpoint, fast_action_tokens_only=True)
    model = backend._policy.model
    restriction = model.generation_config.suppress_tokens
    assert restriction
    before = backend.predict_chunk(observation(7)).actions
    generator = backend.text_generator()
    decoding = generator.start(observation(7), TextPrompt("subtask", "stack the cups"), 6)
    assert _run(decoding).stop_reason == "token_limit"
    assert not set(decoding.tokens) & set(generator.suppressed_ids)
    assert model.generation_config.suppress_tokens is restriction
    np.testing.assert_array_equal(backend.predict_chunk(observation(7)).actions, before)
