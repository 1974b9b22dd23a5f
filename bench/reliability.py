"""Reliability and security figures: fuzzing, fault injection, crash safety, safe loading.

    python bench/reliability.py [--scale 10] [--sigkill-trials 10] [--out bench/results] [-- pytest args]

Runs the reliability test modules (the same code CI runs, with ``--scale`` times more fuzz examples and new
random draws instead of CI's fixed ones) and prints/writes what they counted (``test/fuzz_ledger.py``):

* fuzzing: inputs tried per target (every message -> core conversion, config/parameter loading, the control
  pipeline), how many were accepted or refused with a message, crashes and unsafe outputs (both must be 0);
* fault injection on the running node over real DDS: behaviour, what /diagnostics said, recovery time;
* recorder SIGKILL trials (episodes saved / loadable) and corrupt rosbags (when those modules exist);
* safe-loading cases (pickle, remote code, processor configs, paths) and the source audit.

Results: bench/results/reliability_<date>.{json,md}, with the machine (CPU, cores, load).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODULES = ("test/test_fuzz_inputs.py", "test/test_fuzz_control.py", "test/test_fuzz_config.py",
           "test/test_safe_loading.py", "test/test_reliability_dds.py", "test/test_recorder_sigkill.py",
           "test/test_bag_corruption.py")


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "loadavg_start": os.getloadavg(), "python": platform.python_version(),
            "platform": platform.platform(), "date": dt.datetime.now().isoformat(timespec="seconds")}


def merge(ledgers: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    refusals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    events: list[dict[str, Any]] = []
    examples: dict[str, str] = {}
    for led in ledgers:
        for target, c in led.get("counts", {}).items():
            for k, v in c.items():
                counts[target][k] += v
        for target, c in led.get("refusals", {}).items():
            for k, v in c.items():
                refusals[target][k] += v
        events.extend(led.get("events", []))
        examples.update(led.get("refusal_examples", {}))
    return {"counts": {k: dict(v) for k, v in counts.items()}, "refusals": {k: dict(v) for k, v in refusals.items()},
            "events": events, "refusal_examples": examples}


def markdown(result: dict[str, Any]) -> str:
    m, data = result["machine"], result["ledger"]
    lines = [f"# Reliability figures ({m['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, load average {m['loadavg_start'][0]:.1f} at start / "
             f"{m['loadavg_end'][0]:.1f} at end, Python {m['python']}. Fuzz scale {result['scale']}x CI "
             f"({'fixed CI draws' if result['scale'] == 1 else 'new random draws'}); pytest: {result['pytest']}.", "",
             "## Fuzzing", "", "| target | inputs | accepted | refused with a message | crashes | unsafe outputs |",
             "|---|---:|---:|---:|---:|---:|"]
    total = defaultdict(int)
    for target, c in sorted(data["counts"].items()):
        if target == "self-check":  # test_fuzz_targets_catch_what_they_claim_to flags on purpose
            continue
        n = sum(c.values())
        for k, v in c.items():
            total[k] += v
        why = ", ".join(f"{k} {v}" for k, v in sorted(data["refusals"].get(target, {}).items(), key=lambda kv: -kv[1]))
        refused = f"{c.get('refused', 0)}" + (f" ({why})" if why else "")
        lines.append(f"| {target} | {n} | {c.get('accepted', 0)} | {refused} | {c.get('crash', 0)} | "
                     f"{c.get('unsafe', 0)} |")
    lines.append(f"| **all** | **{sum(total.values())}** | {total['accepted']} | {total['refused']} | "
                 f"**{total['crash']}** | **{total['unsafe']}** |")
    faults = [e for e in data["events"] if e["kind"] == "fault"]
    if faults:
        lines += ["", "## Fault injection (running node, real DDS, simulated time)", "",
                  "| fault | what the node does | /diagnostics said | recovered | recovery (wall s / sim s) |",
                  "|---|---|---|---|---|"]
        for e in faults:
            said = e["diagnostics"].replace("|", "/")[:110]
            lines.append(f"| {e['name']} | {e['behaviour']} | {said} | {'yes' if e['recovered'] else 'NO'} | "
                         f"{e['recovery_wall_s']} / {e['recovery_sim_s']} |")
    for kind, title in (("dds_output_check", "Every trajectory the node published during the DDS module"),
                        ("dds_fuzz", "DDS-level input fuzz"), ("baseline", "Baseline")):
        for e in data["events"]:
            if e["kind"] == kind:
                lines += ["", f"{title}: " + ", ".join(f"{k} {v}" for k, v in e.items() if k != "kind")]
    kills = [e for e in data["events"] if e["kind"] == "sigkill_trial"]
    if kills:
        lines += ["", "## Recorder SIGKILL trials", "", "| trial | killed while | killed after start (s) | "
                  "save confirmed | save request cut off |", "|---:|---|---:|---:|---:|"]
        for e in kills:
            lines.append(f"| {e['trial']} | {e['point']} | {e['killed_after_s']} | {e['saved']} | "
                         f"{e['unanswered']} |")
        for e in data["events"]:
            if e["kind"] == "sigkill_summary":
                lines += ["", "After the kills: " + ", ".join(f"{k} {v}" for k, v in e.items() if k != "kind")]
    bags = [e for e in data["events"] if e["kind"] == "corrupt_bag"]
    if bags:
        lines += ["", "## Bag converter on corrupt bags", "", "| corruption | exit code | dataset reported | message |",
                  "|---|---:|---|---|"]
        for e in bags:
            lines.append(f"| {e['case']} | {e['rc']} | {e['dataset']} | {e['message'][:100]} |")
    safe = [e for e in data["events"] if e["kind"] == "safe_loading"]
    if safe:
        lines += ["", "## Safe loading", "", "| case | outcome | message |", "|---|---|---|"]
        for e in safe:
            lines.append(f"| {e['case']} | {e['outcome']} | {e['message'].replace('|', '/')[:120]} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=10.0, help="fuzz examples = CI examples x scale")
    parser.add_argument("--sigkill-trials", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--ledgers", type=Path, default=None,
                        help="only report: read the ledgers a test run wrote (pytest with $WALLX_RELIABILITY_OUT set)")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    info = machine_info()
    if args.ledgers is not None:
        info["loadavg_end"] = os.getloadavg()
        ledgers = [json.loads(p.read_text()) for p in sorted(args.ledgers.glob("ledger_*.json"))]
        result = {"machine": info, "scale": float(os.environ.get("WALLX_FUZZ_SCALE", "1")), "modules": [],
                  "pytest": f"report of {len(ledgers)} ledger(s) in {args.ledgers}", "pytest_rc": 0,
                  "ledger": merge(ledgers)}
        return _write(result, args.out)
    modules = [m for m in MODULES if (REPO / m).is_file()]
    with tempfile.TemporaryDirectory(prefix="wallx_reliability_") as tmp:
        env = dict(os.environ, WALLX_FUZZ_SCALE=str(args.scale), WALLX_RELIABILITY_OUT=tmp,
                   WALLX_SIGKILL_TRIALS=str(args.sigkill_trials))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *modules, *args.pytest_args]
        print("running:", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        summary = next((ln for ln in reversed(proc.stdout.splitlines()) if " passed" in ln or " failed" in ln),
                       f"exit code {proc.returncode}")
        ledgers = [json.loads(p.read_text()) for p in Path(tmp).glob("ledger_*.json")]
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-2000:])
    info["loadavg_end"] = os.getloadavg()
    result = {"machine": info, "scale": args.scale, "modules": modules, "pytest": summary.strip("= "),
              "pytest_rc": proc.returncode, "ledger": merge(ledgers)}
    _write(result, args.out)
    return proc.returncode


def _write(result: dict[str, Any], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"reliability_{dt.datetime.now():%Y%m%d_%H%M}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"written: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
