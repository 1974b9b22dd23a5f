"""fast_decode's own greedy loop: stock ``generate``'s tokens without its per-token host work.

Per generated token, transformers' ``_sample`` runs WallX's ``prepare_inputs_for_generation`` (pads the MoE
token types with a concatenation, compares cache positions on the host), the forward,
``_update_model_kwargs_for_generation`` (grows the attention mask and cache position), a vocabulary-wide
(151k) clone, the logits processors (each builds a 151k ``arange`` and ``isin``), argmax, a concatenation of
the sequence, the stopping criteria and a host sync (``unfinished.max() == 0``); ``FastDecoder``'s forward adds
its coverage check (one host read). On the GPU that is dozens of small launches and several syncs around
every ~2-3 ms of weights reading (``bench/fast_decode_host.py`` measures it on CPU).

This loop keeps stock's prefill (``generation.generation_prefill``) and its first token (chosen by stock's
own processors and criteria), then per token runs only ``FastDecoder``'s step and the rules stock applies to
that step's logits, over the vocabulary rows that may be generated:

* ``min_new_tokens`` / ``min_length``: end-of-sequence gets -inf while the sequence is shorter (decided on the
  host from the step number, as the processors decide from the sequence length);
* greedy choice = the first maximum (``torch.argmax``); where every allowed row is -inf, token 0, as argmax over
  a vocabulary that is -inf everywhere picks;
* stop at end-of-sequence or ``max_length``. The tokens are read back every ``eos_check_every`` steps (1 on
  CPU, where a read costs nothing): tokens computed past the end-of-sequence are dropped and the key/value
  cache cropped, so the result is stock's sequence and cache whatever the interval.

It runs only where that is all stock would do (greedy, batch 1, the processors and criteria above, no
streamer, scores, attentions or hidden states requested, a padding-free prompt, a vocabulary restriction that
excludes the proprioception token, no sliding window reached); otherwise stock's loop runs with
``FastDecoder``'s per-step forward, as before. On CPU the tokens, every step's logits and the chunks are
bit-identical to stock's (test/test_fast_decode.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from wallx_ros.lerobot import generation

if TYPE_CHECKING:
    from wallx_ros.policy.engine.fast_decode import FastDecoder

__all__ = ["GreedyPlan", "greedy_plan", "run_greedy"]

_PROCESSORS = ("MinNewTokensLengthLogitsProcessor", "MinLengthLogitsProcessor")
_CRITERIA = ("MaxLengthCriteria", "EosTokenCriteria")


@dataclass(frozen=True)
class GreedyPlan:
    """What stock's processors and criteria do, read from them once per generation."""

    max_length: int  # total sequence length at which generation stops (MaxLengthCriteria)
    stop_ids: tuple[int, ...]  # generation stops after one of these (EosTokenCriteria)
    mask_ids: tuple[int, ...]  # -inf while the sequence is shorter than min_length (MinLength/MinNewTokens)
    min_length: int


def _ids(value: Any) -> tuple[int, ...]:
    if isinstance(value, torch.Tensor):
        return tuple(int(v) for v in value.flatten().tolist())
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value or ())


def greedy_plan(decoder: FastDecoder, input_ids: torch.Tensor, logits_processor: Any, stopping_criteria: Any,
                generation_config: Any, synced_gpus: bool, streamer: Any,
                model_kwargs: dict[str, Any]) -> GreedyPlan | None:
    """The plan if this loop computes exactly what stock's would, else None (stock's loop runs)."""
    cfg = generation_config
    if cfg.do_sample or synced_gpus or streamer is not None or input_ids.shape[0] != 1:
        return None
    if cfg.output_scores or cfg.output_attentions or cfg.output_hidden_states:
        return None
    if not decoder.covers_every_generated_token() or model_kwargs.get("inputs_embeds") is not None:
        return None
    if model_kwargs.get("use_cache") is False:
        return None
    mask_ids: set[int] = set()
    min_length = 0
    for proc in logits_processor:
        name = type(proc).__name__
        if name not in _PROCESSORS:
            return None
        if name == "MinNewTokensLengthLogitsProcessor":
            min_length = max(min_length, int(proc.prompt_length_to_skip) + int(proc.min_new_tokens))
        else:
            min_length = max(min_length, int(proc.min_length))
        mask_ids.update(_ids(proc.eos_token_id))
    max_length = None
    stop_ids: set[int] = set()
    for crit in stopping_criteria:
        name = type(crit).__name__
        if name not in _CRITERIA:
            return None
        if name == "MaxLengthCriteria":
            max_length = int(crit.max_length) if max_length is None else min(max_length, int(crit.max_length))
        else:
            stop_ids.update(_ids(crit.eos_token_id))
    if max_length is None or not decoder.window_allows(max_length):
        return None
    mask = model_kwargs.get("attention_mask")
    if mask is not None and (mask.dim() != 2 or not bool((mask == 1).all())):  # one host read per chunk
        return None
    return GreedyPlan(max_length=max_length, stop_ids=tuple(sorted(stop_ids)), mask_ids=tuple(sorted(mask_ids)),
                      min_length=min_length)


def run_greedy(decoder: FastDecoder, model: Any, plan: GreedyPlan, input_ids: torch.Tensor, logits_processor: Any,
               stopping_criteria: Any, generation_config: Any, model_kwargs: dict[str, Any]) -> Any:
    """Stock's prefill and first token, then the decode steps in a lean loop; returns what ``_sample`` would."""
    record = bool(generation_config.return_dict_in_generate and generation_config.output_logits)
    outputs, model_kwargs = generation.generation_prefill(model, input_ids, generation_config, model_kwargs)
    cache = model_kwargs["past_key_values"]
    first = outputs.logits[:, -1, :].clone().float().to(input_ids.device)  # as stock
    del outputs
    token = torch.argmax(logits_processor(input_ids, first), dim=-1)
    raw_logits: list[torch.Tensor] = [first] if record else []
    prompt = int(input_ids.shape[1])
    budget = plan.max_length - prompt  # tokens stock generates at most
    tokens = torch.empty(max(budget, 1), dtype=input_ids.dtype, device=input_ids.device)
    tokens[:1] = token
    produced = 1
    done = bool(stopping_criteria(torch.cat([input_ids, token[:, None]], dim=-1), None).all())
    if not done and budget > 1:
        produced = _decode(decoder, model, plan, cache, prompt, budget, tokens, raw_logits if record else None)
    sequences = torch.cat([input_ids, tokens[:produced].view(1, -1)], dim=-1)
    if not generation_config.return_dict_in_generate:
        return sequences
    return generation.generation_output(sequences, tuple(raw_logits) if record else None, cache)


def _decode(decoder: FastDecoder, model: Any, plan: GreedyPlan, cache: Any, prompt: int, budget: int,
            tokens: torch.Tensor, raw_logits: list[torch.Tensor] | None) -> int:
    """Tokens 1..budget-1 (token 0 came from the prefill); returns how many tokens the sequence keeps."""
    device = tokens.device
    cached = int(cache.get_seq_length())  # = prompt: token j is fed at cache position cached + j
    if model.rope_deltas is None:
        raise RuntimeError("fast_decode: the prefill set no rope deltas")
    positions = torch.arange(cached, cached + budget - 1, device=device)
    # stock: positions continue from the prompt's rope deltas, the same on all three mrope axes
    position_ids = (positions.view(1, -1) + model.rope_deltas.to(device)).unsqueeze(0).expand(3, -1, -1)
    step, index = decoder.greedy_step(cache, cached, budget - 1)
    stops = torch.tensor(plan.stop_ids, dtype=tokens.dtype, device=device)
    masked = torch.tensor(plan.mask_ids, dtype=tokens.dtype, device=device)
    if index is not None:  # the columns of those tokens among the computed rows (one host read per chunk)
        masked = torch.isin(index, masked).nonzero().flatten()
    check_every = decoder.eos_check_every if len(plan.stop_ids) else budget
    kept = budget
    computed = 0
    for i in range(1, budget):
        j = i - 1  # the token fed in this step
        scores = step(tokens[j:j + 1].view(1, 1), positions[j:j + 1], position_ids[:, :, j:j + 1])
        computed += 1
        if raw_logits is not None:
            raw_logits.append(decoder.full_logits(scores, index).float())
        if prompt + i < plan.min_length and masked.numel():  # too short to end: end-of-sequence is -inf
            scores = scores.index_fill(-1, masked, float("-inf"))
        best = torch.argmax(scores, dim=-1)
        if index is not None:  # argmax over a vocabulary that is -inf everywhere picks token 0
            best = torch.where(scores.amax(dim=-1) == float("-inf"), 0, index[best])
        tokens[i:i + 1] = best
        if (i + 1) % check_every == 0 or i == budget - 1:
            ends = torch.isin(tokens[:i + 1], stops).nonzero()
            if ends.numel():
                kept = int(ends[0, 0]) + 1
                break
    decoder.finish_greedy(cache, cached, kept - 1, computed)
    if raw_logits is not None:
        del raw_logits[kept:]  # the steps computed past the end-of-sequence: stock never ran them
    return kept
