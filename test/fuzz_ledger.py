"""What the reliability tests tried and what came of it: the figures ``bench/reliability.py`` reports.

Every fuzz target counts its inputs by outcome:

* ``accepted``: the input was valid and produced an output, which passed the target's safety checks;
* ``refused``: the input was rejected with the documented error type and a message (the intended outcome
  for bad input);
* ``crash``: any other exception (a bug: the test fails);
* ``unsafe``: an output that would let NaN / out-of-limit / stale commands through (a bug: the test fails).

Fault-injection scenarios and SIGKILL trials add ``events`` (outcome, recovery times). The ledger is written
as JSON to ``$WALLX_RELIABILITY_OUT/<pid>.json`` at exit when that variable is set (the bench sets it).

Example counts: ``fuzz_settings(n)`` runs ``n`` examples in CI, ``n * $WALLX_FUZZ_SCALE`` in the bench.
CI runs are derandomized (the same inputs every run, so a CI failure reproduces); the bench draws new ones.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

OUTCOMES = ("accepted", "refused", "crash", "unsafe")
_lock = threading.Lock()
_counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
_events: list[dict[str, Any]] = []
_refusals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_examples: dict[str, str] = {}


def scale() -> float:
    return max(0.01, float(os.environ.get("WALLX_FUZZ_SCALE", "1")))


def examples(n_ci: int) -> int:
    return max(1, round(n_ci * scale()))


def fuzz_settings(n_ci: int) -> settings:
    """Bounded, deadline-free hypothesis settings (the machine is shared and slow; timing is not the point)."""
    return settings(max_examples=examples(n_ci), deadline=None, derandomize=scale() == 1.0, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
                    print_blob=True)


class UnsafeOutput(AssertionError):
    """An output that must never leave a node."""


def count(target: str, outcome: str, n: int = 1) -> None:
    assert outcome in OUTCOMES, outcome
    with _lock:
        _counts[target][outcome] += n


@contextmanager
def trial(target: str, refused: tuple[type[BaseException], ...]) -> Iterator[Callable[[str], None]]:
    """One fuzz input: exceptions of the ``refused`` types count as refusals, others as crashes (re-raised).

    The yielded function flags the output unsafe (``flag(reason)`` raises :class:`UnsafeOutput`).
    """

    def flag(reason: str) -> None:
        count(target, "unsafe")
        raise UnsafeOutput(f"{target}: {reason}")

    try:
        yield flag
    except UnsafeOutput:
        raise
    except refused as err:
        count(target, "refused")
        with _lock:
            _refusals[target][type(err).__name__] += 1
            _examples.setdefault(f"{target} / {type(err).__name__}", str(err)[:300])
        return
    except BaseException:
        count(target, "crash")
        raise
    count(target, "accepted")


def event(kind: str, **fields: Any) -> None:
    """A fault-injection outcome, SIGKILL trial, corrupt-bag case... (JSON-serialisable fields)."""
    with _lock:
        _events.append({"kind": kind, **fields})


def snapshot() -> dict[str, Any]:
    with _lock:
        return {"counts": {k: dict(v) for k, v in _counts.items()}, "events": list(_events),
                "refusals": {k: dict(v) for k, v in _refusals.items()}, "refusal_examples": dict(_examples)}


def _write() -> None:
    out = os.environ.get("WALLX_RELIABILITY_OUT")
    if not out:
        return
    data = snapshot()
    if not data["counts"] and not data["events"]:
        return
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"ledger_{os.getpid()}.json").write_text(json.dumps(data, indent=1, default=str))


atexit.register(_write)
