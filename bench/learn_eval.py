"""How well a (trained) WallX checkpoint does transfer-cube: open loop on held-out episodes, closed loop on seeds.

    python bench/learn_eval.py --checkpoint DIR [--held-out DATASET] [--seeds 20] [--first-seed 1000]
        [--execution-horizon 16] [--label trained] [--out bench/results/learn_eval_<label>.json]

Open loop: ``wallx_ros.dataset.open_loop_report`` (the policy backend the node runs) against the recorded
actions of a dataset the checkpoint never saw. Closed loop: ``wallx_ros.sim.rollout`` on the bare scene
(no ROS, no latency), one episode per seed; the expert's figures for the same seeds come from the same
rollout with the scripted plan as the policy (``--expert``), so both columns are measured alike.
``--mean-of DATASET``: the baseline "replay the average demonstration" (row ``k`` of every chunk is the mean over
the dataset's episodes of action ``frame + k``; it knows the time since the start, which a policy does not):
what a policy that ignores where the cube is can achieve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from wallx_ros.core.types import Observation
from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.camera_renderer import CameraRenderer
from wallx_ros.sim.episode_metrics import EpisodeResult
from wallx_ros.sim.rollout import RolloutConfig, run_rollout
from wallx_ros.sim.transfer_cube import ExpertPlan, plan_transfer_cube

INSTRUCTION = "transfer the cube to the left arm"
CAMERAS = {"face_view": "top", "left_wrist_view": "left_wrist", "right_wrist_view": "right_wrist"}


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {d: version(d) for d in ("torch", "lerobot", "transformers", "mujoco")}


def summarise(runs: list[EpisodeResult]) -> dict[str, Any]:
    jumps = [j for r in runs for j in r.switch_jumps]
    return {
        "episodes": len(runs),
        "successes": sum(r.success for r in runs),
        "success_rate": sum(r.success for r in runs) / len(runs),
        "best_stage_mean": float(np.mean([r.best_stage for r in runs])),
        "stage_reached": {str(s): sum(r.best_stage >= s for r in runs) for s in (1, 2, 3, 4)},
        "min_right_gripper_to_cube_m_median": float(np.median([r.min_right_gripper_to_cube_m for r in runs])),
        "final_left_gripper_to_cube_m_median": float(np.median([r.final_left_gripper_to_cube_m for r in runs])),
        "chunk_switch_jump_median": float(np.median(jumps)) if jumps else 0.0,
        "chunk_switch_jump_p90": float(np.percentile(jumps, 90)) if jumps else 0.0,
        "runs": [r.summary() for r in runs],
    }


def state_reader(scene: AlohaScene, names: Any) -> Any:
    """observation.state in the checkpoint's order: scene joints by name, and ``<body>_x/_y/_z`` the object
    positions the sim node publishes with ``objects_in_joint_states`` (what --cube-in-state recorded)."""
    objects = {f"{body}_{axis}": (body, i) for body in scene.object_poses() for i, axis in enumerate("xyz")}
    unknown = [n for n in names if n not in scene.joint_names and n not in objects]
    if unknown:
        raise SystemExit(f"the checkpoint's state names {unknown} are neither scene joints nor object positions")

    def read(positions: np.ndarray) -> np.ndarray:
        poses = scene.object_poses()
        return np.array([positions[scene.joint_names.index(n)] if n in scene.joint_names
                         else poses[objects[n][0]][objects[n][1]] for n in names], dtype=np.float32)

    return read


def expert_policy(scene: AlohaScene, fps: float, rows: int) -> Any:
    """The scripted plan as a chunk policy: rows ``plan.command_at(t + i / fps)`` from the scene time now."""
    state: dict[str, Any] = {}

    def policy(images: object, positions: object) -> np.ndarray:
        if "plan" not in state:
            state["plan"], state["t0"] = plan_transfer_cube(scene), scene.time_s
        plan: ExpertPlan = state["plan"]
        t = scene.time_s - state["t0"]
        return np.array([plan.command_at(t + i / fps) for i in range(rows)])

    return policy


def mean_trajectory(dataset: Path, rows: int = 32) -> np.ndarray:
    """Mean over episodes of the recorded action at each frame index (short episodes hold their last action)."""
    from wallx_ros.dataset.dataset_reader import DatasetReader

    actions, episodes, frames = DatasetReader(dataset).actions_and_index()
    length = int(frames.max()) + 1 + 400 + rows
    total = np.zeros((length, actions.shape[1]))
    ids = np.unique(episodes)
    for e in ids:
        a = actions[episodes == e].astype(np.float64)
        total += np.vstack([a, np.repeat(a[-1:], length - len(a), axis=0)])
    return total / len(ids)


def mean_open_loop(mean: np.ndarray, held_out: Path, max_chunks: int = 48, stride: int = 8) -> float:
    """Open-loop MAE of the mean demonstration at the chunk starts open_loop_report picks (same stride/count)."""
    from wallx_ros.dataset.dataset_reader import DatasetReader

    actions, episodes, frames = DatasetReader(held_out).actions_and_index()
    candidates = np.flatnonzero(frames % stride == 0)
    starts = candidates[np.unique(np.linspace(0, candidates.size - 1, max_chunks).round().astype(int))]
    errors = []
    for i in starts:
        n = int(np.flatnonzero(episodes[i:i + 32] == episodes[i]).size)
        errors.append(np.abs(mean[frames[i]:frames[i] + n] - actions[i:i + n]))
    return float(np.concatenate(errors).mean())


def replay_policy(scene: AlohaScene, mean: np.ndarray, fps: float, rows: int = 32) -> Any:
    state: dict[str, float] = {}

    def policy(images: object, positions: object) -> np.ndarray:
        state.setdefault("t0", scene.time_s)
        k = round((scene.time_s - state["t0"]) * fps)
        return mean[k:k + rows]

    return policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="policy folder (omit with --expert)")
    parser.add_argument("--expert", action="store_true", help="evaluate the scripted expert instead")
    parser.add_argument("--mean-of", type=Path, help="evaluate the mean demonstration of this dataset instead")
    parser.add_argument("--held-out", type=Path, help="dataset for the open-loop report")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--execution-horizon", type=int, default=16)
    parser.add_argument("--duration-s", type=float, default=16.0)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    label = args.label or ("expert" if args.expert else "mean" if args.mean_of else args.checkpoint.name)
    out = args.out or Path(f"bench/results/learn_eval_{label}.json")
    start = time.monotonic()
    result: dict[str, Any] = {
        "what": "transfer-cube: open loop on held-out episodes and closed loop on the bare scene (bench/learn_eval.py)",
        "label": label, "checkpoint": str(args.checkpoint) if args.checkpoint else "scripted expert",
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M"), "load_avg_1m_at_start": os.getloadavg()[0],
        "versions": _versions(),
    }
    scene = AlohaScene("aloha_transfer_cube")
    renderer = CameraRenderer(scene.model, 320, 240)
    mean = None
    if args.expert:
        fps, policy = 10.0, None
    elif args.mean_of:
        fps, policy, mean = 10.0, None, mean_trajectory(args.mean_of)
        if args.held_out:
            result["open_loop_mae"] = mean_open_loop(mean, args.held_out)
            print(f"open loop: MAE {result['open_loop_mae']:.4f}", flush=True)
    else:
        from wallx_ros.dataset.dataset_reader import DatasetReader
        from wallx_ros.dataset.open_loop_report import evaluate_open_loop, write_report
        from wallx_ros.policy import BackendConfig, load_backend

        backend = load_backend(BackendConfig(checkpoint_dir=args.checkpoint, allow_random_weights=True, seed=0))
        if tuple(backend.action_names) != scene.joint_names:
            raise SystemExit("the checkpoint's action joints are not the scene's (matched by name)")
        read_state = state_reader(scene, backend.state_names)
        fps = backend.fps
        if args.held_out:
            report = evaluate_open_loop(DatasetReader(args.held_out), backend, checkpoint=str(args.checkpoint),
                                        stride=8, max_chunks=48)
            paths = write_report(report, out.with_suffix("").as_posix() + "_open_loop")
            result["open_loop"] = {"dataset": str(args.held_out), "chunks": report.chunks,
                                   "mae_overall": report.mae_overall, "mae_by_horizon": report.mae_by_horizon,
                                   "mae_per_joint": report.mae_per_joint, "report": str(paths["markdown"])}
            print(f"open loop: MAE {report.mae_overall:.4f} over {report.chunks} chunks", flush=True)

        def policy(images: dict[str, np.ndarray], positions: np.ndarray) -> np.ndarray:
            obs = Observation(images={c: images[c] for c in backend.cameras},
                              state=read_state(positions), instruction=INSTRUCTION, stamp_ns=0)
            return backend.predict_chunk(obs).actions

    config = RolloutConfig(policy_fps=fps, execution_horizon=args.execution_horizon, duration_s=args.duration_s,
                           cameras={"face_view": "top"} if policy is None else {c: CAMERAS[c] for c in backend.cameras})
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        chunk_policy = expert_policy(scene, fps, 32) if args.expert else \
            replay_policy(scene, mean, fps) if mean is not None else policy
        run = run_rollout(scene, renderer, chunk_policy, seed, config)
        runs.append(run)
        print(f"seed {seed}: stage {run.final_stage} (best {run.best_stage}), right gripper came within "
              f"{run.min_right_gripper_to_cube_m:.3f} m of the cube", flush=True)
    renderer.close()
    if not runs:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        return
    result["closed_loop"] = {"execution_horizon": args.execution_horizon, "policy_fps": fps,
                             "duration_s": args.duration_s, "first_seed": args.first_seed, **summarise(runs)}
    result["wall_s"] = round(time.monotonic() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    cl = result["closed_loop"]
    print(f"{label}: {cl['successes']}/{cl['episodes']} successes, median closest approach "
          f"{cl['min_right_gripper_to_cube_m_median']:.3f} m -> {out}")


if __name__ == "__main__":
    main()
