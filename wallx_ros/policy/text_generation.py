"""Words from WALL-OSS: greedy text generation with the loaded WallX model's language head.

LeRobot's ``wall_x`` generates only action tokens (its ``predict(predict_mode="text")`` hard-codes 100 tokens,
LeRobot 0.4.4's Qwen token ids and the action prompt). WALL-OSS keeps Qwen2.5-VL's language head, and
X-Square's own code asks it for the current subtask and answers questions (``text_prompts``). Here the model
answers from the same camera images as the action chunks, over the full text vocabulary with every control
token suppressed (action tokens, ``<|propri|>``, image and chat markup, the unused rows of the head) except the
end tokens (``<|im_end|>``, ``<|endoftext|>``, the checkpoint's ``eos_token_id``). Decoding is greedy like
X-Square's (``do_sample=False``) and LeRobot's, honouring the checkpoint's ``repetition_penalty`` as
``generate`` would, so an answer is a pure function of (observation, prompt, limit): no seed matters.

The decoding loop is this module's own, one *unit* at a time (the prefill, then one token per unit:
``TextDecoding.advance``), because the model is shared with the action chunks: the inference worker runs an
answer's units in the gaps between chunks and a chunk between any two units, each decoding keeping its own
KV cache and rotary offsets. The forwards are the project's fast-mode machinery: the prefill is stock WallX's
forward (vision through ``VisionTowerRunner``, logits of the last position only) and every token one
``FastDecoder`` step (``fast_decode``; one replayed CUDA graph per token on CUDA), or stock's forward where
``FastDecoder`` cannot run the checkpoint. The tokens equal transformers' ``generate`` with the same settings
(test/test_text_generation.py).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from wallx_ros.core.types import Observation
from wallx_ros.lerobot import versions, wallx_model
from wallx_ros.policy.errors import InferenceError, TextRequestError
from wallx_ros.policy.text_limits import MAX_NEW_TOKENS_LIMIT
from wallx_ros.policy.text_prompts import IMAGE_PLACEHOLDER, TextPrompt

__all__ = ["MAX_NEW_TOKENS_LIMIT", "STOP_REASONS", "TextAnswer", "TextDecoding", "TextGenerator"]

_LOG = logging.getLogger("wallx_ros.policy")

STOP_REASONS = ("end_token", "token_limit", "timeout", "error")
# C0 controls other than tab/newline, and DEL: a random or confused model can emit them as byte tokens; they do
# not belong in a ROS string (NUL ends a CDR string early)
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class TextAnswer:
    """One generated answer and how it ended."""

    kind: str  # "subtask" or "question" (text_prompts.PROMPT_KINDS)
    text: str
    stop_reason: str  # STOP_REASONS: the end token, the token limit, the deadline (or a model error)
    new_tokens: int  # tokens generated (an end token included)
    prompt_tokens: int
    observation_stamp_ns: int
    prefill_ms: float  # the prompt's forward (images included)
    decode_ms: float  # all single-token steps together


class TextGenerator:
    """Generates text from one loaded WallX policy; owned by the thread that owns the model."""

    def __init__(self, policy: Any, model_inputs: Callable[[Observation], Any], *, engine: str = "auto",
                 cuda_graphs: bool = False, max_question_tokens: int = 256) -> None:
        """``model_inputs(observation)``: LeRobot's ``preprocess_inputs`` of the observation (the images are
        taken from it exactly as for an action chunk). ``engine``: ``auto`` runs the token steps on
        ``FastDecoder`` where it supports the checkpoint, ``stock`` always on stock's forward."""
        self._policy = policy
        self._model = policy.model
        self._model_inputs = model_inputs
        self.max_question_tokens = max_question_tokens
        processor = self._model.processor
        self._tokenizer = processor.tokenizer
        self._merge = int(processor.image_processor.merge_size)
        self._image_token = int(self._model.config.image_token_id)
        self._views = wallx_model.camera_view_names(list(policy.config.image_features))
        self._control_tokens = wallx_model.tokenizer_control_tokens(policy)
        self.end_ids = _end_token_ids(self._tokenizer, self._model.generation_config)
        self.suppressed_ids = _suppressed_ids(self._tokenizer, self._control_tokens, self.end_ids,
                                              int(self._model.get_output_embeddings().weight.shape[0]))
        device = self._model.get_output_embeddings().weight.device
        self._suppressed = torch.tensor(self.suppressed_ids, dtype=torch.int64, device=device)
        self._end = torch.tensor(self.end_ids, dtype=torch.int64)
        penalty = getattr(self._model.generation_config, "repetition_penalty", None)
        self.repetition_penalty = float(penalty) if penalty is not None else 1.0
        self._decoder: Any = None
        if engine != "stock":
            from wallx_ros.policy.engine.fast_decode import FastDecoder, fast_decode_unsupported_reason

            reason = fast_decode_unsupported_reason(policy)
            if reason is None:
                self._decoder = FastDecoder(policy, cuda_graphs=cuda_graphs)
            else:
                _LOG.info("text generation runs stock WallX forwards: %s", reason)
        self.engine = "fast_decode" if self._decoder is not None else "stock"

    # -- checking the user's text ----------------------------------------------------------------------------
    def question_problem(self, question: str) -> str:
        """Why ``question`` cannot be asked ('' if it can): empty, the model's control tokens, too long."""
        if not question.strip():
            return "the question is empty"
        found = sorted(t for t in self._control_tokens if t in question)
        if found:
            return (f"the question contains the model's control token(s) {found[:3]}: they would corrupt the "
                    "prompt layout; remove them")
        if len(question) > self.max_question_tokens:  # cheap pre-filter: a token is at least one character
            tokens = len(self._tokenizer(question, add_special_tokens=False)["input_ids"])
            if tokens > self.max_question_tokens:
                return f"the question has {tokens} tokens, more than the limit of {self.max_question_tokens}"
        return ""

    # -- generating ----------------------------------------------------------------------------------------------
    def start(self, observation: Observation, prompt: TextPrompt, max_new_tokens: int) -> TextDecoding:
        """Prepare an answer to ``prompt`` about ``observation`` (images and state processed, prompt tokenized;
        no model forward yet). Raises TextRequestError for a bad question or limit, InferenceError for an
        observation the model cannot take."""
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise TextRequestError(f"max_new_tokens must be in [1, {MAX_NEW_TOKENS_LIMIT}], got {max_new_tokens}")
        if prompt.kind == "question":
            problem = self.question_problem(prompt.text)
            if problem:
                raise TextRequestError(problem)
        elif any(t in prompt.text for t in self._control_tokens):
            raise TextRequestError("the instruction contains the model's control tokens")
        try:
            with versions.quiet_stdout():
                inputs = self._model_inputs(observation)
        except (RuntimeError, ValueError, IndexError, TypeError, KeyError) as err:
            raise InferenceError(f"cannot prepare the observation: {type(err).__name__}: {err}") from err
        grid = inputs["image_grid_thw"]
        counts = [int(t * h * w) // self._merge ** 2 for t, h, w in grid.tolist()]
        if len(counts) != len(self._views):
            raise InferenceError(f"{len(counts)} images prepared for {len(self._views)} cameras")
        pieces = prompt.render(self._views).split(IMAGE_PLACEHOLDER)
        text = pieces[0] + "".join(IMAGE_PLACEHOLDER * n + piece for n, piece in zip(counts, pieces[1:], strict=True))
        ids = self._tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        if int((ids == self._image_token).sum()) != sum(counts):
            raise InferenceError("the prompt's image tokens do not match the images")
        device = inputs["pixel_values"].device
        return TextDecoding(self, prompt.kind, ids.to(device), inputs["pixel_values"], grid, max_new_tokens,
                            observation.stamp_ns)

    def generate(self, observation: Observation, prompt: TextPrompt, max_new_tokens: int,
                 deadline_monotonic: float | None = None) -> TextAnswer:
        """The whole answer now (the direct call); stops early at ``deadline_monotonic`` (reason ``timeout``)."""
        decoding = self.start(observation, prompt, max_new_tokens)
        while not decoding.done:
            if deadline_monotonic is not None and time.monotonic() >= deadline_monotonic:
                decoding.stop("timeout")
                break
            decoding.advance()
        return decoding.answer()

    # -- the model calls (used by TextDecoding) -------------------------------------------------------------------
    @contextlib.contextmanager
    def _model_turn(self, rope_deltas: Any) -> Iterator[None]:
        """The model as this decoding left it: its rotary offsets set, the fast decode steps installed, and the
        fast-mode restriction to action tokens lifted; all put back afterwards (the next chunk must not notice)."""
        model = self._model
        config = model.generation_config
        saved_deltas, saved_suppress = model.rope_deltas, config.suppress_tokens
        model.rope_deltas = rope_deltas
        config.suppress_tokens = None  # FastDecoder reads it: the text vocabulary is not restricted there
        try:
            with torch.no_grad(), self._decoder.active() if self._decoder is not None else contextlib.nullcontext():
                yield
        finally:
            model.rope_deltas, config.suppress_tokens = saved_deltas, saved_suppress

    def _next_token(self, logits: torch.Tensor, ids: torch.Tensor) -> int:
        """Greedy choice from the last position's logits, as ``generate`` makes it with these settings."""
        scores = logits[:, -1, :].to(dtype=torch.float32, copy=True)
        if self.repetition_penalty != 1.0:  # transformers' RepetitionPenaltyLogitsProcessor, over prompt + answer
            seen = scores.gather(1, ids)
            seen = torch.where(seen < 0, seen * self.repetition_penalty, seen / self.repetition_penalty)
            scores.scatter_(1, ids, seen)
        scores.index_fill_(1, self._suppressed, float("-inf"))
        return int(scores.argmax(dim=-1)[0])

    def _decode_text(self, tokens: list[int]) -> str:
        """The answer's text without end tokens, control tokens (even spelled out byte by byte), control
        characters, or the replacement character of byte tokens that form no whole UTF-8 character (an answer cut
        at its token limit mid-character, or a confused model)."""
        text = str(self._tokenizer.decode([t for t in tokens if t not in self.end_ids], skip_special_tokens=True))
        for token in self._control_tokens:
            text = text.replace(token, "")
        return _CONTROL_CHARS.sub("", text).replace("\ufffd", "").strip()


class TextDecoding:
    """One answer in progress: ``advance`` runs its next unit (the prefill, then one token). Other model calls
    may run between units: the decoding keeps its own KV cache and rotary offsets."""

    def __init__(self, generator: TextGenerator, kind: str, prompt_ids: torch.Tensor, pixel_values: torch.Tensor,
                 image_grid_thw: torch.Tensor, max_new_tokens: int, stamp_ns: int) -> None:
        self._gen = generator
        self.kind = kind
        self._prompt_ids = prompt_ids
        self._pixel_values: torch.Tensor | None = pixel_values
        self._grid = image_grid_thw
        self.max_new_tokens = max_new_tokens
        self.stamp_ns = stamp_ns
        self.tokens: list[int] = []
        self.stop_reason = ""
        self._cache: Any = None
        self._rope_deltas: Any = None
        self._ids = prompt_ids  # prompt + answer so far (for the repetition penalty)
        self.prefill_ms = 0.0
        self.decode_ms = 0.0

    @property
    def done(self) -> bool:
        return bool(self.stop_reason)

    @property
    def prefilled(self) -> bool:
        """True once the prompt went through the model (the next units are single tokens)."""
        return self._cache is not None

    @property
    def prompt_tokens(self) -> int:
        return int(self._prompt_ids.shape[1])

    def stop(self, reason: str) -> None:
        """End the answer here (e.g. ``timeout``); the text so far is the answer."""
        if reason not in STOP_REASONS:
            raise ValueError(f"stop reason must be one of {STOP_REASONS}, got {reason!r}")
        if not self.done:
            self.stop_reason = reason
            self._cache = self._pixel_values = None  # free the KV cache now

    def advance(self) -> None:
        """Run the next unit: the prefill, or one token. Raises InferenceError if the model fails."""
        if self.done:
            return
        gen = self._gen
        start = time.monotonic()
        try:
            with gen._model_turn(self._rope_deltas):
                logits = self._prefill() if self._cache is None else self._step()
                self._rope_deltas = gen._model.rope_deltas
        except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as err:
            self.stop("error")
            raise InferenceError(f"text generation failed: {type(err).__name__}: {err}") from err
        token = gen._next_token(logits, self._ids)
        self.tokens.append(token)
        self._ids = torch.cat([self._ids, self._ids.new_tensor([[token]])], dim=1)
        elapsed = (time.monotonic() - start) * 1e3
        if len(self.tokens) == 1:
            self.prefill_ms = elapsed
        else:
            self.decode_ms += elapsed
        if token in gen.end_ids:
            self.stop("end_token")
        elif len(self.tokens) >= self.max_new_tokens:
            self.stop("token_limit")

    def _prefill(self) -> torch.Tensor:
        from transformers import DynamicCache

        ids = self._prompt_ids
        length = int(ids.shape[1])
        self._cache = DynamicCache()
        out = self._gen._model(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=self._pixel_values,
            image_grid_thw=self._grid, moe_token_types=torch.zeros_like(ids), past_key_values=self._cache,
            use_cache=True, cache_position=torch.arange(length, device=ids.device), return_dict=True)
        self._pixel_values = None
        return out.logits  # type: ignore[no-any-return]

    def _step(self) -> torch.Tensor:
        ids = self._ids
        length = int(ids.shape[1])  # the new token is the last one; the cache holds the others
        token = ids[:, -1:]
        out = self._gen._model(
            input_ids=token, attention_mask=torch.ones_like(ids), image_grid_thw=self._grid,
            moe_token_types=torch.zeros_like(token), past_key_values=self._cache, use_cache=True,
            cache_position=torch.tensor([length - 1], device=ids.device), return_dict=True)
        return out.logits  # type: ignore[no-any-return]

    def answer(self) -> TextAnswer:
        """The answer so far (final once ``done``)."""
        return TextAnswer(kind=self.kind, text=self._gen._decode_text(self.tokens), stop_reason=self.stop_reason,
                          new_tokens=len(self.tokens), prompt_tokens=self.prompt_tokens,
                          observation_stamp_ns=self.stamp_ns, prefill_ms=self.prefill_ms, decode_ms=self.decode_ms)


def _end_token_ids(tokenizer: Any, generation_config: Any) -> tuple[int, ...]:
    """Tokens that end an answer: the tokenizer's end of sequence, ``<|im_end|>`` (end of a chat turn, what
    X-Square's subtask targets end with), ``<|endoftext|>``, and the checkpoint's ``eos_token_id``."""
    ids: set[int] = set()
    configured = getattr(generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list | tuple) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    unknown = tokenizer.unk_token_id
    for token in ("<|im_end|>", "<|endoftext|>"):
        found = tokenizer.convert_tokens_to_ids(token)
        if isinstance(found, int) and found != unknown:
            ids.add(found)
    return tuple(sorted(int(i) for i in ids))


def _suppressed_ids(tokenizer: Any, control_tokens: frozenset[str], end_ids: tuple[int, ...],
                    head_rows: int) -> tuple[int, ...]:
    """Token ids an answer may not contain: every control token (action tokens, ``<|propri|>``, image and chat
    markup: the tokenizer's special and added tokens), the action-token range, and the rows of the language
    head past the tokenizer's vocabulary (padding, no text); the end tokens stay allowed."""
    ids = set(range(len(tokenizer), head_rows))
    unknown = tokenizer.unk_token_id
    for token in control_tokens:
        found = tokenizer.convert_tokens_to_ids(token)
        if isinstance(found, int) and found != unknown:
            ids.add(found)
    start = tokenizer.init_kwargs.get("action_token_start_index")
    size = tokenizer.init_kwargs.get("action_token_vocab_size")
    if start is not None and size is not None:
        ids.update(range(int(start), int(start) + int(size)))
    return tuple(sorted(i for i in ids if 0 <= i < head_rows and i not in end_ids))
