"""Markdown summary of one mutmut 2.5 run (called by scripts/mutation.sh with the tools venv's Python).

    python scripts/mutation_report.py MODULE WORK_DIR MUTMUT ELAPSED_S STACK > bench/results/mutation_MODULE.md

A "message mutant" changes only the text of a string literal that is a message: an f-string or a literal with a
space in it (the words of an error or a log line; mutmut writes XX into it). They are counted apart: the score
that matters for the limits is the one without them. Timeouts and suspicious mutants count as detected.
"""

from __future__ import annotations

import datetime
import platform
import re
import subprocess
import sys

CLASSES = ("killed", "timeout", "suspicious", "survived", "skipped", "untested")


def _ids(mutmut: str, work: str, kind: str) -> list[int]:
    out = subprocess.run([mutmut, "result-ids", kind], cwd=work, capture_output=True, text=True).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def _diff(mutmut: str, work: str, mutant: int) -> tuple[str, int, str, str]:
    """(diff text, line number, removed line, added line) of one mutant."""
    text = subprocess.run([mutmut, "show", str(mutant)], cwd=work, capture_output=True, text=True).stdout
    removed = next((ln[1:] for ln in text.splitlines() if ln.startswith("-") and not ln.startswith("---")), "")
    added = next((ln[1:] for ln in text.splitlines() if ln.startswith("+") and not ln.startswith("+++")), "")
    hunk = re.search(r"@@ -(\d+)", text)
    line = int(hunk.group(1)) if hunk else 0
    body = [ln for ln in text.splitlines() if ln[:1] in ("-", "+", " ", "@") and not ln.startswith(("---", "+++"))]
    return "\n".join(body), line, removed, added


def is_message(removed: str, added: str) -> bool:
    if "XX" not in added or added.replace("XX", "") != removed.replace("XX", ""):
        return False
    start = added.index("XX")
    quote_at = start - 1
    while quote_at >= 0 and added[quote_at] not in "\"'":
        quote_at -= 1
    prefix = re.search(r"([rRbBfF]*)$", added[:max(quote_at, 0)])
    if prefix and "f" in prefix.group(1).lower():
        return True
    end = added.find("XX", start + 2)
    return end > start and " " in added[start + 2:end]


def main() -> int:
    module, work, mutmut, elapsed, stack = sys.argv[1:6]
    ids = {kind: _ids(mutmut, work, kind) for kind in CLASSES}
    total = sum(len(v) for v in ids.values())
    detected = len(ids["killed"]) + len(ids["timeout"]) + len(ids["suspicious"])
    survivors = [(m, *_diff(mutmut, work, m)) for m in ids["survived"] + ids["untested"]]
    message = {m for m, _d, _l, removed, added in survivors if is_message(removed, added)}
    # message mutants among the detected ones are not known without their diffs: count them too
    detected_message = sum(1 for m in ids["killed"] + ids["timeout"] + ids["suspicious"]
                           if is_message(*_diff(mutmut, work, m)[2:]))
    non_message_total = total - len(message) - detected_message
    non_message_detected = detected - detected_message
    score = 100.0 * detected / total if total else 0.0
    nm_score = 100.0 * non_message_detected / non_message_total if non_message_total else 0.0
    print(f"# Mutation testing: wallx_ros/core/{module}.py\n")
    print(f"{datetime.date.today()} on {platform.node()} ({platform.machine()}, {platform.python_version()}), stack "
          f"{stack}, mutmut 2.5.1, one worker, {int(elapsed) // 60} min {int(elapsed) % 60} s. Command: "
          f"`bash scripts/mutation.sh {module}`.\n")
    print("| mutants | killed | timeout | suspicious | survived | untested | detected | without message mutants |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {total} | {len(ids['killed'])} | {len(ids['timeout'])} | {len(ids['suspicious'])} | "
          f"{len(ids['survived'])} | {len(ids['untested'])} | {score:.1f} % | {nm_score:.1f} % "
          f"({non_message_detected}/{non_message_total}) |\n")
    print("Message mutants (text of an error or log line, an f-string or a literal with a space): "
          f"{len(message) + detected_message} ({detected_message} detected anyway).\n")
    print("## Surviving mutants (not messages)\n")
    print("Each is explained in bench/results/mutation.md (equivalent, or why no test can tell).\n")
    for m, diff, line, _removed, _added in survivors:
        if m in message:
            continue
        print(f"### mutant {m}, line {line}\n\n```diff\n{diff}\n```\n")
    print("## Surviving message mutants\n")
    print(", ".join(f"{m} (line {line})" for m, _d, line, *_ in survivors if m in message) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
