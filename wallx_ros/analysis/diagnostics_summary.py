"""Turn diagnostic statuses into a few short text lines (what the RViz diagnostics overlay shows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["StatusEntry", "summarise"]

_LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


@dataclass(frozen=True)
class StatusEntry:
    """One diagnostic_msgs/DiagnosticStatus as plain data."""

    name: str
    level: int
    message: str
    values: tuple[tuple[str, str], ...] = ()


def summarise(statuses: Sequence[StatusEntry], keys_per_status: int = 6, width: int = 90) -> list[str]:
    """One header line per status (level, name, message) and up to ``keys_per_status`` key=value pairs,
    preferring timing keys (containing ``ms``, ``rate`` or ``missed``); newest status per name wins."""
    newest: dict[str, StatusEntry] = {}
    for status in statuses:
        newest[status.name] = status
    lines: list[str] = []
    for name in sorted(newest):
        status = newest[name]
        lines.append(f"[{_LEVELS.get(status.level, str(status.level))}] {name}: {status.message}"[:width])
        preferred = [kv for kv in status.values if any(t in kv[0] for t in ("ms", "rate", "missed"))]
        others = [kv for kv in status.values if kv not in preferred]
        pairs = [f"{k}={v}" for k, v in (preferred + others)[:keys_per_status]]
        line = "    "
        for pair in pairs:
            if len(line) + len(pair) + 2 > width and line.strip():
                lines.append(line.rstrip())
                line = "    "
            line += pair + "  "
        if line.strip():
            lines.append(line.rstrip())
    return lines
