"""Success rate of the scripted transfer-cube expert over many seeds, on the bare MuJoCo scene (no ROS).

    python bench/expert_success.py [--seeds 50] [--out bench/results/transfer_cube_expert.json]

Each seed places the cube as gym-aloha does; the plan is computed from the settled cube pose and executed at
the scene's 50 Hz control period with the simulator's own command limits. Success = gym-aloha's stage 4 at
the end of the plan (the left gripper holds the cube off the table).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.transfer_cube import SUCCESS_STAGE, plan_transfer_cube, transfer_cube_stage

CONTROL_PERIOD_S = 0.02


def run_seed(scene: AlohaScene, seed: int, max_velocity: float) -> dict[str, float | int]:
    scene.reset(seed)
    scene.advance(100)  # let the cube settle on the table (0.2 s)
    cube = scene.object_poses()["box"][:3].copy()
    plan = plan_transfer_cube(scene, max_velocity=max_velocity)
    substeps = round(CONTROL_PERIOD_S / scene.timestep_s)
    best = 0
    command = scene.command()
    t = 0.0
    while t <= plan.duration_s + 1e-9:
        command, _ = scene.limits.saturate(plan.command_at(t), command, CONTROL_PERIOD_S)
        scene.set_command(command)
        scene.advance(substeps)
        best = max(best, transfer_cube_stage(scene))
        t += CONTROL_PERIOD_S
    final = transfer_cube_stage(scene)
    return {"seed": seed, "final_stage": final, "best_stage": best, "success": int(final == SUCCESS_STAGE),
            "duration_s": round(plan.duration_s, 3), "cube_x": round(float(cube[0]), 4),
            "cube_y": round(float(cube[1]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--max-velocity", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/transfer_cube_expert.json"))
    args = parser.parse_args()
    scene = AlohaScene("aloha_transfer_cube")
    start = time.monotonic()
    runs = [run_seed(scene, seed, args.max_velocity) for seed in range(args.seeds)]
    successes = sum(int(r["success"]) for r in runs)
    result = {
        "what": "scripted transfer-cube expert (wallx_ros.sim.transfer_cube) on the bare gym-aloha scene",
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "date": time.strftime("%Y-%m-%d"),
        "seeds": args.seeds, "max_velocity": args.max_velocity, "successes": successes,
        "success_rate": successes / args.seeds,
        "failures": [r for r in runs if not r["success"]],
        "episode_s_median": float(np.median([r["duration_s"] for r in runs])),
        "wall_s": round(time.monotonic() - start, 1),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{successes}/{args.seeds} successes ({result['success_rate']:.0%}), median episode "
          f"{result['episode_s_median']:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
