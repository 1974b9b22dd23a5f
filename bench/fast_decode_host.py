"""Fast-mode per-token time on CPU: stock generation, fast_decode in generate's loop, fast_decode's lean loop.

    python bench/fast_decode_host.py [--chunks 10] [--out bench/results]

The tiny fast checkpoint (random weights, Qwen's 151k vocabulary on LeRobot 0.4.x), 1 torch thread,
``fast_action_tokens_only`` and ``fast_min_new_tokens=100``, so every chunk generates 100 tokens. The model's
own compute per token is small here, so the per-token time is mostly the host work around it: what
``greedy_decode`` removes (processors, criteria, input preparation, per-token syncs) shows up directly. The
three variants run interleaved, chunk by chunk, so load on the shared machine hits them alike. Each chunk's
``generate`` is timed (prefill included) and divided by its tokens; the prefill alone is timed once per variant.
Results: ``bench/results/fast_decode_host_<date>.md`` with machine, load and versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed_generate(backend: Any, times: list[tuple[float, int]]) -> None:
    """Wrap the model's generate() to record (seconds, generated tokens) per call."""
    model = backend._policy.model
    original = type(model).generate.__get__(model)

    def generate(*args: Any, **kwargs: Any) -> Any:
        prompt = int(kwargs["input_ids"].shape[1]) if "input_ids" in kwargs else int(args[0].shape[1])
        t0 = time.perf_counter()
        out = original(*args, **kwargs)
        seconds = time.perf_counter() - t0
        sequences = out if hasattr(out, "shape") else out.sequences
        times.append((seconds, int(sequences.shape[1]) - prompt))
        return out

    model.generate = generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from wallx_ros.core.types import Observation
    from wallx_ros.lerobot import versions
    from wallx_ros.policy import BackendConfig, load_backend
    from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS, TinyCheckpointSpec, build_tiny_checkpoint
    from wallx_ros.policy.engine.fast_decode import FastDecoder

    load_start = os.getloadavg()
    checkpoint = build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="fast_host_")) / "tiny_fast",
                                       TinyCheckpointSpec(mode="fast", seed=1))

    def load(engine: str) -> Any:
        return load_backend(BackendConfig(checkpoint_dir=checkpoint, allow_random_weights=True, seed=0, engine=engine,
                                          fast_action_tokens_only=True, fast_min_new_tokens=100))

    variants = {"stock": load("stock"), "fast_decode, generate's loop": load("auto"),
                "fast_decode, lean loop": load("auto")}
    variants["fast_decode, generate's loop"]._decoder = FastDecoder(
        variants["fast_decode, generate's loop"]._policy, lean_loop=False)
    times: dict[str, list[tuple[float, int]]] = {name: [] for name in variants}
    for name, backend in variants.items():
        _timed_generate(backend, times[name])
    rng = np.random.default_rng(0)
    obs = [Observation(images={c: rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=rng.normal(size=14).astype(np.float32), instruction="stack the cups", stamp_ns=i)
           for i in range(args.chunks + 1)]
    chunks: dict[str, list[Any]] = {name: [] for name in variants}
    for i, o in enumerate(obs):  # chunk 0 warms up every variant
        for name, backend in variants.items():
            chunks[name].append(backend.predict_chunk(o).actions)
        if i == 0:
            for t in times.values():
                t.clear()
    for name in variants:
        for got, expected in zip(chunks[name], chunks["stock"], strict=True):
            np.testing.assert_array_equal(got, expected)  # the same chunks, or the figures mean nothing
    load_end = os.getloadavg()
    rows = []
    for name, t in times.items():
        per_token = [1e3 * s / n for s, n in t]
        per_chunk = [1e3 * s for s, _ in t]
        rows.append(f"| {name} | {len(t)} | {t[0][1]} | {statistics.median(per_chunk):.1f} | "
                    f"{statistics.median(per_token):.2f} | {max(per_token):.2f} |")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    text = "\n".join([
        f"# Fast mode per-token time on CPU ({dt.datetime.now():%Y-%m-%d %H:%M})", "",
        f"Machine: {cpu}, {os.cpu_count()} cores (shared; load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end). Python {platform.python_version()}, torch {torch.__version__}, LeRobot "
        f"{'.'.join(map(str, versions.lerobot_version()))}, transformers "
        f"{'.'.join(map(str, versions.transformers_version()))}. Tiny fast checkpoint (random weights), "
        "1 torch thread, action tokens only, 100 tokens per chunk; the three variants interleaved chunk by chunk; "
        "every variant's chunks equal stock's (checked).", "",
        f"Command: `python bench/fast_decode_host.py --chunks {args.chunks}`", "",
        "| variant | chunks | tokens/chunk | generate p50 (ms) | per token p50 (ms) | per token max (ms) |",
        "|---|---|---|---|---|---|", *rows, ""])
    args.out.mkdir(parents=True, exist_ok=True)
    line = versions.lerobot_version()[1]
    path = args.out / f"fast_decode_host_{dt.datetime.now():%Y%m%d_%H%M}_lerobot0{line}.md"
    path.write_text(text)
    print(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
