"""``wallx-ros-learn-demo``: the whole loop in simulation, over real DDS on sim time, one resumable stage at a time.

    record  sim_node (transfer-cube) + expert_node (scripted demonstrator as a leader arm) -> teleop_node
            (leader mode) -> recorder_node: ``--episodes`` successful demonstrations in ``WORK/dataset``
    train   wallx-ros-train (LeRobot's lerobot-train) from a tiny WallX built here, ``--steps`` steps on CPU
            (float32, see wallx_ros.policy.training_setup); the last checkpoint is ``WORK/policy``
    eval    sim_node + policy_node (the trained checkpoint) + evaluator_node: ``--eval-episodes`` closed-loop
            episodes on unseen seeds, scored in ``WORK/eval.json``

Each stage skips what is done (episodes already in the dataset, the final training checkpoint, an evaluation
of the same checkpoint) and picks up what is not (the next seeds, LeRobot's ``--resume`` from the last saved
checkpoint). Node logs: ``WORK/logs``. DDS stays on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["LEARN_CAMERAS", "main", "parse_losses"]

REPO_ID = "local/transfer_cube_expert"
INSTRUCTION = "transfer the cube to the left arm"
CUBE_STATE = ("box_x", "box_y", "box_z")  # the sim's objects_in_joint_states names for the cube
LEARN_CAMERAS = ("face_view=top",)  # what the learn configuration sees (see README: one camera fits the CPU budget)
_LOSS = re.compile(r"step:(\d+\S*) .*?loss:([0-9.]+)")


def parse_losses(log: str, log_freq: int | None = None) -> list[tuple[int, float]]:
    """(step, loss) of every LeRobot training log line ("step:200 ... loss:0.512 ..."). LeRobot rounds steps from
    1000 on to the nearest thousand ("step:1K" for 1000 to 1499): with ``log_freq`` such a step is the previous
    one + ``log_freq`` when that rounds alike."""
    out: list[tuple[int, float]] = []
    for step, loss in _LOSS.findall(log):
        if step.endswith("K"):
            rounded = int(float(step[:-1]) * 1000)
            following = out[-1][0] + (log_freq or 0) if out else rounded
            value = following if log_freq and abs(following - rounded) <= 500 else rounded
        else:
            value = int(step)
        out.append((value, float(loss)))
    return out


class Stage:
    """Runs node processes with logs in WORK/logs and stops them with SIGINT (a clean ROS shutdown)."""

    def __init__(self, name: str, work: Path, env: dict[str, str]) -> None:
        self.name, self.env = name, env
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes], Any]] = []

    def node(self, module: str, params: dict[str, Any], remaps: dict[str, str] | None = None,
             params_file: Path | None = None) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", f"wallx_ros.nodes.{module}", "--ros-args"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for key, value in params.items():
            args += ["-p", f"{key}:={_ros_value(value)}"]
        for src, dst in (remaps or {}).items():
            args += ["-r", f"{src}:={dst}"]
        log = (self.logs / f"{self.name}_{module}.log").open("ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                stdin=subprocess.DEVNULL)
        self.procs.append((module, proc, log))
        return proc

    def stop(self, timeout_s: float = 120.0) -> dict[str, int]:
        codes = {}
        for _module, proc, _log in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for module, proc, log in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            log.close()
            codes[module] = int(proc.returncode)
        self.procs = []
        return codes

    def wait_for(self, proc: subprocess.Popen[bytes], what: str) -> int:
        """Wait for ``proc`` to exit; any other node exiting first is a failure."""
        while proc.poll() is None:
            dead = [m for m, p, _ in self.procs if p is not proc and p.poll() is not None]
            if dead:
                raise RuntimeError(f"{what}: {', '.join(dead)} exited early (see {self.logs})")
            time.sleep(0.5)
        return int(proc.returncode)


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_ros_value(v) for v in value) + "]"
    return str(value)


def _say(text: str) -> None:
    print(f"[learn] {text}", flush=True)


def _episodes_in(dataset: Path) -> int:
    info = dataset / "meta" / "info.json"
    return int(json.loads(info.read_text())["total_episodes"]) if info.is_file() else 0


def _next_seed(episode_log: Path, first_seed: int) -> int:
    if not episode_log.is_file():
        return first_seed
    seeds = [json.loads(line)["seed"] for line in episode_log.read_text().splitlines() if line.strip()]
    return max([first_seed - 1, *seeds]) + 1


def _sim_params(args: argparse.Namespace, rtf: float, seed: int) -> dict[str, Any]:
    return {"scene": "aloha_transfer_cube", "seed": seed, "camera_rate_hz": float(args.fps),
            "image_width": args.image_width, "image_height": args.image_height, "cameras": list(args.cameras),
            "real_time_factor": rtf, "objects_in_joint_states": bool(args.cube_in_state)}


def _state_names(args: argparse.Namespace) -> list[str]:
    from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS

    return [*ALOHA_JOINTS, *(CUBE_STATE if args.cube_in_state else ())]


def stage_record(args: argparse.Namespace, work: Path, env: dict[str, str]) -> None:
    from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS
    from wallx_ros.sim.aloha_scene import AlohaScene

    dataset, episode_log = work / "dataset", work / "expert_episodes.jsonl"
    have = _episodes_in(dataset)
    if have >= args.episodes:
        _say(f"record: {have} episodes in {dataset}, nothing to do")
        return
    seed = _next_seed(episode_log, args.first_seed)
    _say(f"record: {args.episodes - have} more demonstrations from seed {seed} into {dataset} (has {have}); "
         f"logs in {work / 'logs'}")
    limits = AlohaScene("aloha_transfer_cube").limits
    joints = list(ALOHA_JOINTS)
    cams = [c.split("=")[0] for c in args.cameras]
    stage = Stage("record", work, env)
    try:
        # the teleop node streams one-point targets: start each from the last command, as a JTC configured for
        # teleoperation does (from the measured state, every new target restarts from a lagging arm)
        stage.node("sim_node", {**_sim_params(args, args.record_real_time_factor, seed),
                                "interpolate_from_desired_state": True})
        stage.node("teleop_node", {"use_sim_time": True, "mode": "leader", "deadman": "none", "joint_names": joints,
                                   "max_velocity": [2.0], "lower_limits": limits.lower.tolist(),
                                   "upper_limits": limits.upper.tolist()},
                   remaps={"~/joint_trajectory": "/arm_controller/joint_trajectory"})
        stage.node("recorder_node", {"use_sim_time": True, "root": str(dataset), "repo_id": REPO_ID, "fps": args.fps,
                                     "robot_type": "aloha", "cameras": cams, "joint_names": _state_names(args),
                                     "action_joint_names": joints,
                                     "instruction": INSTRUCTION, "max_age_s": 1.5 / args.fps,
                                     "gap_policy": "hold", "progress_log_period_s": 0.0})
        expert = stage.node("expert_node", {"use_sim_time": True, "episodes": args.episodes - have,
                                            "first_seed": seed, "episode_log": str(episode_log)})
        code = stage.wait_for(expert, "record")
    finally:
        codes = stage.stop()
    if code != 0 or codes.get("recorder_node", 0) != 0:
        raise RuntimeError(f"record: expert exit {code}, nodes {codes} (see {work / 'logs'})")
    _say(f"record: done, {_episodes_in(dataset)} episodes")


def _final_checkpoint(train: Path, steps: int) -> Path:
    return train / "checkpoints" / f"{steps:06d}" / "pretrained_model"


def stage_train(args: argparse.Namespace, work: Path, env: dict[str, str]) -> Path:
    train, final = work / "train", _final_checkpoint(work / "train", args.steps)
    if (final / "model.safetensors").is_file():
        _say(f"train: {final} exists, nothing to do")
        return final
    start = work / "start_checkpoint"
    if not (start / "model.safetensors").is_file():
        from wallx_ros.policy.checkpoints.tiny_checkpoint import TinyCheckpointSpec, build_tiny_checkpoint

        _say(f"train: building the tiny WallX to start from ({start})")
        build_tiny_checkpoint(start, TinyCheckpointSpec(
            seed=args.seed, fps=float(args.fps), cameras=tuple(c.split("=")[0] for c in args.cameras),
            state_names=tuple(_state_names(args))))
    cmd = [sys.executable, "-m", "wallx_ros.cli.train", *args.train_option,
           f"--dataset.repo_id={REPO_ID}", f"--dataset.root={work / 'dataset'}", f"--policy.path={start}",
           "--policy.device=cpu", "--policy.push_to_hub=false", f"--steps={args.steps}",
           f"--batch_size={args.batch_size}", f"--num_workers={args.num_workers}", f"--seed={args.seed}",
           f"--save_freq={args.save_freq}", f"--log_freq={args.log_freq}", "--wandb.enable=false",
           f"--output_dir={train}", f"--policy.optimizer_lr={args.lr}",
           f"--policy.scheduler_warmup_steps={max(1, args.steps // 20)}",
           f"--policy.scheduler_decay_steps={args.steps}", f"--policy.scheduler_decay_lr={args.lr / 10}"]
    last = train / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
    if last.is_file():
        cmd += ["--resume=true", f"--config_path={last}"]
        _say(f"train: resuming from {last.parent}")
    elif train.exists():
        shutil.rmtree(train)  # an attempt that saved nothing: LeRobot refuses to start over an existing folder
    _say(f"train: {args.steps} steps, batch {args.batch_size} (log: {work / 'logs' / 'train.log'})")
    log_path = work / "logs" / "train.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:  # LeRobot's progress (tqdm, loss lines) to the console and the log
            log.write(line)
            if " loss:" in line or "packaged" in line or "Error" in line:
                print(f"[learn] train: {line.strip()[-160:]}", flush=True)
        code = proc.wait()
    if code != 0 or not (final / "model.safetensors").is_file():
        raise RuntimeError(f"train: wallx-ros-train exited {code} (see {log_path})")
    losses = parse_losses(log_path.read_text(errors="replace"), args.log_freq)
    (work / "loss_curve.json").write_text(json.dumps([{"step": s, "loss": v} for s, v in losses]) + "\n")
    return final


def stage_eval(args: argparse.Namespace, work: Path, env: dict[str, str], checkpoint: Path) -> dict[str, Any]:
    from wallx_ros.sim.aloha_scene import AlohaScene

    out = work / "eval.json"
    if out.is_file():
        done = json.loads(out.read_text())
        if done.get("checkpoint") == str(checkpoint) and done.get("episodes") == args.eval_episodes \
                and done.get("first_seed") == args.eval_first_seed:
            _say(f"eval: {out} has this checkpoint's {args.eval_episodes} episodes, nothing to do")
            return dict(done)
    _say(f"eval: {args.eval_episodes} closed-loop episodes of {checkpoint} from seed {args.eval_first_seed} at "
         f"real-time factor {args.eval_real_time_factor:g}")
    limits = AlohaScene("aloha_transfer_cube").limits
    stage = Stage("eval", work, env)
    try:
        stage.node("sim_node", _sim_params(args, args.eval_real_time_factor, args.eval_first_seed))
        stage.node("policy_node", {"use_sim_time": True, "checkpoint_dir": str(checkpoint),
                                   "allow_random_weights": True, "num_threads": 1, "seed": 0,
                                   "instruction": INSTRUCTION,
                                   "position_lower": limits.lower.tolist(),
                                   "position_upper": limits.upper.tolist()},
                   remaps={"/wallx_policy/joint_trajectory": "/arm_controller/joint_trajectory"},
                   params_file=Path(__file__).resolve().parents[2] / "config" / "policy.yaml")
        evaluator = stage.node("evaluator_node", {"use_sim_time": True, "episodes": args.eval_episodes,
                                                  "first_seed": args.eval_first_seed, "episode_s": args.episode_s,
                                                  "result_file": str(out)})
        code = stage.wait_for(evaluator, "eval")
    finally:
        stage.stop()
    if code != 0 or not out.is_file():
        raise RuntimeError(f"eval: the evaluator exited {code} (see {work / 'logs'})")
    result = json.loads(out.read_text())
    result["checkpoint"] = str(checkpoint)
    out.write_text(json.dumps(result, indent=1) + "\n")
    _say(f"eval: {result['successes']}/{result['episodes']} successes; right gripper came within "
         f"{result['min_right_gripper_to_cube_m_median']:.3f} m of the cube (median)")
    return dict(result)


def export_policy(checkpoint: Path, dest: Path, args: argparse.Namespace, work: Path) -> None:
    """Copy the trained policy folder to ``dest`` (replaced) without LeRobot's train_config.json (it holds this
    machine's paths), plus ``wallx_ros_learn.json``: how it was made and what it measured."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(checkpoint, dest, ignore=shutil.ignore_patterns("train_config.json"))
    config = json.loads((dest / "config.json").read_text())  # this machine's start-checkpoint paths: not needed
    config.update(pretrained_path=None, pretrained_name_or_path="wallx_backbone")  # (the packaged backbone is)
    (dest / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    marker = dest / "wallx_ros_checkpoint.json"
    if marker.is_file():  # still the test-size architecture (allow_random_weights), but trained: say so, no paths
        info = json.loads(marker.read_text())
        info["note"] = ("tiny test-size WallX trained from random init by wallx-ros-learn-demo on scripted "
                        "transfer-cube demonstrations (wallx_ros_learn.json); load with allow_random_weights")
        marker.write_text(json.dumps(info, indent=2) + "\n")
    learned = {"command": "wallx-ros-learn-demo " + " ".join(sys.argv[1:]),
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                            if k not in ("work", "export", "stages")},
               "episodes": _episodes_in(work / "dataset")}
    for name in ("loss_curve.json", "eval.json"):
        if (work / name).is_file():
            learned[name.removesuffix(".json")] = json.loads((work / name).read_text())
    (dest / "wallx_ros_learn.json").write_text(json.dumps(learned, indent=1) + "\n")
    _say(f"exported {checkpoint} to {dest}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wallx-ros-learn-demo", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--work", type=Path, default=Path(".cache/learn"), help="everything goes here")
    p.add_argument("--stages", default="record,train,eval", help="comma-separated subset of record,train,eval")
    p.add_argument("--episodes", type=int, default=30, help="demonstrations to record")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--fps", type=int, default=10, help="dataset fps = camera rate = the policy's rate")
    p.add_argument("--cameras", nargs="+", default=list(LEARN_CAMERAS), help="key=MJCF camera, recorded and seen")
    p.add_argument("--cube-in-state", action=argparse.BooleanOptionalAction, default=True,
                   help="observation.state = the joints + the cube's position (sim objects_in_joint_states: a "
                        "perception stand-in); --no-cube-in-state: the joints only, the cube is seen by the camera")
    p.add_argument("--image-width", type=int, default=320)
    p.add_argument("--image-height", type=int, default=240)
    p.add_argument("--record-real-time-factor", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=1200,
                   help="~19 min at batch 4 on a loaded 2-core CPU (batch 8 costs ~2.5x per step)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0, help="start weights and training seed")
    p.add_argument("--num-workers", type=int, default=1)
    p.add_argument("--save-freq", type=int, default=200)
    p.add_argument("--log-freq", type=int, default=25)
    p.add_argument("--train-option", action="append", default=["--wallx_ros.precision=float32"],
                   help="extra wallx-ros-train argument (repeatable)")
    p.add_argument("--eval-episodes", type=int, default=3)
    p.add_argument("--eval-first-seed", type=int, default=1000)
    p.add_argument("--episode-s", type=float, default=16.0)
    p.add_argument("--eval-real-time-factor", type=float, default=0.25)
    p.add_argument("--export", type=Path, help="copy the trained policy here (e.g. models/transfer_cube_tiny)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - {"record", "train", "eval"}
    if unknown or args.episodes < 1 or args.steps < 1:
        print(f"wallx-ros-learn-demo: bad --stages {sorted(unknown)} or --episodes/--steps < 1", file=sys.stderr)
        return 2
    work = args.work.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # DDS never leaves loopback
    env.setdefault("ROS_DOMAIN_ID", "42")
    env.setdefault("MUJOCO_GL", "osmesa")
    env.setdefault("PYOPENGL_PLATFORM", "osmesa")
    env.setdefault("OMP_NUM_THREADS", "1")
    timings: dict[str, float] = {}
    try:
        if "record" in stages:
            start = time.monotonic()
            stage_record(args, work, env)
            timings["record_s"] = round(time.monotonic() - start, 1)
        checkpoint = _final_checkpoint(work / "train", args.steps)
        if "train" in stages:
            start = time.monotonic()
            checkpoint = stage_train(args, work, env)
            timings["train_s"] = round(time.monotonic() - start, 1)
        policy = work / "policy"
        if (checkpoint / "model.safetensors").is_file():
            if policy.is_symlink() or policy.exists():
                policy.unlink()
            policy.symlink_to(checkpoint)
        if "eval" in stages:
            if not (checkpoint / "model.safetensors").is_file():
                raise RuntimeError(f"eval: no trained checkpoint at {checkpoint}: run the train stage first")
            start = time.monotonic()
            stage_eval(args, work, env, checkpoint)
            timings["eval_s"] = round(time.monotonic() - start, 1)
        if args.export is not None:
            if not (checkpoint / "model.safetensors").is_file():
                raise RuntimeError(f"export: no trained checkpoint at {checkpoint}")
            export_policy(checkpoint, args.export.resolve(), args, work)
    except (RuntimeError, OSError) as err:
        print(f"[learn] failed: {err}", file=sys.stderr, flush=True)
        return 1
    _say(f"done: {', '.join(f'{k} {v:.0f} s' for k, v in timings.items()) or 'nothing to do'}; "
         f"policy: {work / 'policy'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
