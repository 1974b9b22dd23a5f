"""Child process for the dataset crash tests: writes episodes and SIGKILLs itself at a chosen point.

python dataset_child.py ROOT MODE KILL_EPISODE
  MODE plain_lerobot        LeRobot alone (no wallx_ros writer): save episodes in one dataset object,
                            then die after the last save_episode, before finalize (the trap)
  MODE after_save_episode   DatasetWriter: die right after LeRobot's save_episode of episode KILL_EPISODE
  MODE before_commit        DatasetWriter: die after finalize, before the journal commit of KILL_EPISODE
  MODE disk_full            DatasetWriter on a small tmpfs: write until the disk is full (see the test)
Frames are deterministic (``frame_values``) so the parent can compare what it loads.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from wallx_ros.dataset.spec import CameraSpec, DatasetSpec
from wallx_ros.lerobot import datasets as lerobot_datasets

H, W, FPS, FRAMES = 24, 32, 10, 6
JOINTS = ("j0", "j1")


def spec_for(root: Path, **kw: object) -> DatasetSpec:
    return DatasetSpec(root=root, repo_id="local/crash", fps=FPS, cameras=(CameraSpec("face_view", H, W),),
                       state_names=JOINTS, action_names=JOINTS, robot_type="test", video_codec="h264",
                       image_writer_threads=0, **kw)  # type: ignore[arg-type]


def frame_values(ep: int, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = np.full((H, W, 3), (40 * ep + 20 * i) % 250, np.uint8)
    return img, np.array([ep, i], np.float32), np.array([i, -ep], np.float32)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def write_episode(writer: object, ep: int) -> None:
    writer.start_episode()  # type: ignore[attr-defined]
    for i in range(FRAMES):
        img, state, action = frame_values(ep, i)
        writer.add_frame({"face_view": img}, state, action, f"task {ep % 2}")  # type: ignore[attr-defined]


def main() -> None:
    root, mode, kill_ep = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if mode == "plain_lerobot":
        spec = spec_for(root)
        ds = lerobot_datasets.create_dataset(repo_id=spec.repo_id, root=root, fps=FPS, features=spec.features(),
                                           robot_type="test", use_videos=True, vcodec="h264")
        for ep in range(kill_ep + 1):
            for i in range(FRAMES):
                img, state, action = frame_values(ep, i)
                ds.add_frame({"observation.images.face_view": img, "observation.state": state, "action": action,
                              "task": f"task {ep % 2}"})
            lerobot_datasets.save_episode(ds)
            print(f"SAVED {ep}", flush=True)
        die()

    from wallx_ros.dataset import recovery, writer

    if mode == "after_save_episode":
        original = lerobot_datasets.save_episode

        def save_then_maybe_die(ds: object) -> None:
            original(ds)
            if w.num_episodes == kill_ep:
                die()

        writer.lerobot_datasets.save_episode = save_then_maybe_die  # type: ignore[attr-defined]
    elif mode == "before_commit":
        original_commit = recovery.CommitJournal.commit

        def commit_or_die(self: recovery.CommitJournal, episodes: int, frames: int) -> None:
            if episodes == kill_ep + 1:
                die()
            original_commit(self, episodes, frames)

        recovery.CommitJournal.commit = commit_or_die  # type: ignore[method-assign]
    elif mode == "disk_full":
        disk_full(root)
        return
    w = writer.DatasetWriter(spec_for(root))
    for ep in range(w.num_episodes, kill_ep + 1):
        write_episode(w, ep)
        w.save_episode()
        print(f"SAVED {ep}", flush=True)
    print("NOT KILLED", flush=True)


def disk_full(root: Path) -> None:
    """Fill the tmpfs until a save fails; check the error, the saved episodes, and recovery once space is free."""
    from wallx_ros.dataset.errors import DatasetWriteError
    from wallx_ros.dataset.writer import DatasetWriter

    filler = root.parent / "filler.bin"
    w = DatasetWriter(spec_for(root, min_free_mb=0.0))
    report: dict[str, object] = {"saved": []}
    rng = np.random.default_rng(0)
    ep = 0
    try:
        while ep < 50:
            w.start_episode()
            for i in range(FRAMES):
                _, state, action = frame_values(ep, i)
                noise = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)  # incompressible: fills the disk
                w.add_frame({"face_view": noise}, state, action, "fill")
            w.save_episode()
            report["saved"].append(ep)  # type: ignore[attr-defined]
            ep += 1
            if ep == 2:  # from now on the disk is nearly full
                free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
                with open(filler, "wb") as f:
                    f.write(b"\0" * max(0, free - 64 * 1024))
    except DatasetWriteError as err:
        report["error"] = str(err)
        if w.episode_open:  # a frame failed to write: the episode is dropped
            w.discard_episode()
    report["writer_ready"] = w.ready
    report["episodes_after_error"] = w.num_episodes
    filler.unlink(missing_ok=True)  # the operator frees space; the same writer goes on
    write_episode(w, 99)
    w.save_episode()
    report["episodes_final"] = w.num_episodes
    w.close()
    ds = lerobot_datasets.load_dataset("local/crash", root)
    report["loaded_frames"] = len(ds)
    report["loaded_episodes"] = ds.num_episodes
    report["last_state"] = ds[len(ds) - 1]["observation.state"].tolist()
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
