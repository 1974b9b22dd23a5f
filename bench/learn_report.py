"""Collect the learn-loop measurements into one results file (JSON + markdown + loss-curve PNG).

    python bench/learn_report.py --loss-curve WORK/loss_curve.json --train-log WORK/logs/train.log \\
        --trained bench/results/learn_eval_trained.json --random bench/results/learn_eval_random.json \\
        --expert bench/results/learn_eval_expert.json [--mean-trajectory ...json] [--ros WORK/eval.json] \\
        [--note "load ~10 from parallel jobs"] --out bench/results/learn_transfer_cube

Inputs are what bench/learn_eval.py and wallx-ros-learn-demo wrote; nothing is measured here.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path
from typing import Any


def _load(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path else None


def _closed(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return doc.get("closed_loop", doc)


def _row(name: str, doc: dict[str, Any] | None, open_loop: float | None) -> str:
    cl = _closed(doc)
    if cl is None:
        return f"| {name} | {'' if open_loop is None else f'{open_loop:.4f}'} | | | | | |"
    jump = cl.get("chunk_switch_jump_median", cl.get("published_switch_jump_median"))
    return (f"| {name} | {'' if open_loop is None else f'{open_loop:.4f}'} | {cl['successes']}/{cl['episodes']} | "
            f"{cl['stage_reached']['2']}/{cl['episodes']} | {cl['min_right_gripper_to_cube_m_median']:.3f} | "
            f"{cl['final_left_gripper_to_cube_m_median']:.3f} | "
            f"{'' if jump is None else f'{jump:.3f}'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss-curve", type=Path, required=True)
    parser.add_argument("--train-log", type=Path)
    parser.add_argument("--trained", type=Path, required=True)
    parser.add_argument("--random", type=Path, required=True)
    parser.add_argument("--expert", type=Path, required=True)
    parser.add_argument("--mean-trajectory", type=Path)
    parser.add_argument("--ros", type=Path, help="eval.json of the closed loop over ROS")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, required=True, help="path without suffix")
    args = parser.parse_args()
    curve = json.loads(args.loss_curve.read_text())
    trained, random_, expert = _load(args.trained), _load(args.random), _load(args.expert)
    mean_traj, ros = _load(args.mean_trajectory), _load(args.ros)
    assert trained is not None and random_ is not None
    ol_trained = trained["open_loop"]["mae_overall"]
    ol_random = random_["open_loop"]["mae_overall"]
    update_s = [float(x) for x in re.findall(r"updt_s:([0-9.]+)", args.train_log.read_text())] \
        if args.train_log else []
    doc = {
        "what": "learn loop on transfer-cube: scripted demonstrations -> wallx-ros-train (tiny WallX) -> closed loop",
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "date": time.strftime("%Y-%m-%d"), "note": args.note,
        "loss_curve": curve, "update_s_per_step_logged": update_s,
        "open_loop_mae": {"trained": ol_trained, "random_init": ol_random, "ratio": ol_random / ol_trained,
                          "mean_trajectory": (mean_traj or {}).get("open_loop_mae")},
        "closed_loop_bare": {"trained": _closed(trained), "random_init": _closed(random_), "expert": _closed(expert),
                             "mean_trajectory": _closed(mean_traj)},
        "closed_loop_ros": ros,
        "sources": {k: str(v) for k, v in vars(args).items() if isinstance(v, Path)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    lines = [f"# Learn loop on transfer-cube ({doc['date']}, {doc['machine']})", "", args.note, "",
             f"Training: {len(curve)} logged points, loss {curve[0]['loss']:.3f} (step {curve[0]['step']}) -> "
             f"{curve[-1]['loss']:.3f} (step {curve[-1]['step']}).", "",
             f"Open loop on held-out episodes (MAE, rad / normalised gripper): trained {ol_trained:.4f}, random "
             f"init {ol_random:.4f} ({ol_random / ol_trained:.1f}x lower).", "",
             "| policy | open-loop MAE | success | reached stage 2 (lifted) | closest approach of the right gripper "
             "(m, median) | final left gripper to cube (m, median) | command jump at chunk switch (median) |",
             "|---|---|---|---|---|---|---|",
             _row("scripted expert (bare scene)", expert, None),
             _row("trained tiny WallX (bare scene)", trained, ol_trained),
             _row("random init (bare scene)", random_, ol_random)]
    if mean_traj is not None:
        lines.append(_row("time-indexed mean demonstration (bare scene)", mean_traj, mean_traj.get("open_loop_mae")))
    if ros is not None:
        lines.append(_row("trained tiny WallX, over ROS (policy node, blending)", ros, None))
    every = max(1, len(curve) // 12)
    lines += ["", "Training loss (flow matching, one logged batch; the step's learning rate in the train log):", "",
              "| step | loss |", "|---|---|"]
    lines += [f"| {c['step']} | {c['loss']:.3f} |" for c in curve[every - 1::every]]
    if update_s:
        lines += ["", f"Seconds per update (logged): median {sorted(update_s)[len(update_s) // 2]:.2f}."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    _plot(curve, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.md')}")


def _plot(curve: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    ax.plot([c["step"] for c in curve], [c["loss"] for c in curve], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (flow matching)")
    ax.set_title("tiny WallX on scripted transfer-cube demonstrations")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
