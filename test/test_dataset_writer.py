"""dataset.writer: LeRobot v3 datasets written through LeRobot's API, read back by LeRobotDataset; real
SIGKILLs at the dangerous moments, a real full disk (tmpfs in a private mount namespace), resume, discard."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_child import FPS, FRAMES, JOINTS, H, W, frame_values, spec_for
from ros_harness import REPO_ROOT, subprocess_env

from wallx_ros.dataset.errors import DatasetFrameError, DatasetSpecError, DatasetStateError, DatasetWriteError
from wallx_ros.dataset.recovery import state_dir_for
from wallx_ros.dataset.spec import CameraSpec, DatasetSpec
from wallx_ros.dataset.writer import DatasetWriter
from wallx_ros.lerobot import datasets as lerobot_datasets

CHILD = Path(__file__).resolve().parent / "dataset_child.py"


def _write(writer: DatasetWriter, ep: int) -> None:
    writer.start_episode()
    for i in range(FRAMES):
        img, state, action = frame_values(ep, i)
        writer.add_frame({"face_view": img}, state, action, f"task {ep % 2}")


def _check_episodes(root: Path, episodes: list[int]) -> None:
    """Load with LeRobotDataset and compare every frame with what was written."""
    ds = lerobot_datasets.load_dataset("local/crash", root)
    assert ds.num_episodes == len(episodes) and len(ds) == FRAMES * len(episodes) and ds.fps == FPS
    for n, ep in enumerate(episodes):
        for i in range(FRAMES):
            item = ds[n * FRAMES + i]
            img, state, action = frame_values(ep, i)
            assert item["episode_index"].item() == n and item["frame_index"].item() == i
            assert item["timestamp"].item() == pytest.approx(i / FPS, abs=1e-6)
            np.testing.assert_array_equal(item["observation.state"].numpy(), state)
            np.testing.assert_array_equal(item["action"].numpy(), action)
            video = item["observation.images.face_view"]  # decoded from mp4: (3, H, W) float in [0, 1]
            assert tuple(video.shape) == (3, H, W)
            assert abs(float(video.mean()) * 255 - img.mean()) < 6, "decoded frame differs from the written one"
            assert item["task"] == f"task {ep % 2}"


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every crash scenario runs in its own child process, all at once (each pays the LeRobot import)."""
    base = tmp_path_factory.mktemp("crash")
    runs = {name: (base / name / "ds", [sys.executable, str(CHILD), str(base / name / "ds"), mode, kill_ep])
            for name, mode, kill_ep in (("plain", "plain_lerobot", "1"),
                                        ("after_save_episode", "after_save_episode", "2"),
                                        ("before_commit", "before_commit", "2"))}
    if shutil.which("unshare") and shutil.which("mount"):
        mnt = base / "small"
        mnt.mkdir()
        script = f"mount -t tmpfs -o size=3m tmpfs {mnt} && exec {sys.executable} {CHILD} {mnt / 'ds'} disk_full 0"
        runs["disk_full"] = (mnt / "ds", ["unshare", "-rm", "sh", "-c", script])
    for root, _ in runs.values():
        root.parent.mkdir(parents=True, exist_ok=True)
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=subprocess_env(), cwd=str(REPO_ROOT)) for name, (_, cmd) in runs.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = (runs[name][0], subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


def test_round_trip_resume_discard_and_names(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(spec_for(root)) as w:
        assert w.recovery.fresh and w.num_episodes == 0
        _write(w, 0)
        report = w.save_episode()
        assert (report.index, report.frames, report.duration_s) == (0, FRAMES, FRAMES / FPS)
        _write(w, 1)
        assert w.discard_episode() == FRAMES
        with pytest.raises(DatasetStateError, match="no episode is open"):
            w.add_frame({"face_view": frame_values(0, 0)[0]}, [0, 0], [0, 0], "x")
    # resume: a new writer on the same folder appends (LeRobot's resume path)
    with DatasetWriter(spec_for(root)) as w:
        assert not w.recovery.fresh and not w.recovery.repaired and w.num_episodes == 1
        _write(w, 1)
        w.save_episode()
        assert (w.num_episodes, w.total_frames) == (2, 2 * FRAMES)
    _check_episodes(root, [0, 1])
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "test"
    assert info["features"]["observation.state"]["names"] == list(JOINTS)
    assert info["features"]["observation.images.face_view"]["dtype"] == "video"
    assert not (root / "images").exists(), "PNG frames of the discarded episode were left behind"


def test_bad_frames_and_settings_are_refused_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter(spec_for(root)) as w:
        w.start_episode()
        img, state, action = frame_values(0, 0)
        with pytest.raises(DatasetFrameError, match=r"camera face_view: got uint8 \(10, 10, 3\)"):
            w.add_frame({"face_view": np.zeros((10, 10, 3), np.uint8)}, state, action, "t")
        with pytest.raises(DatasetFrameError, match=r"missing \['face_view'\], unknown \['top'\]"):
            w.add_frame({"top": img}, state, action, "t")
        with pytest.raises(DatasetFrameError, match=r"non-finite values for \['j1'\]"):
            w.add_frame({"face_view": img}, [0.0, float("nan")], action, "t")
        with pytest.raises(DatasetFrameError, match="task is empty"):
            w.add_frame({"face_view": img}, state, action, " ")
        with pytest.raises(DatasetStateError, match="no frames"):
            w.save_episode()
        _write(w, 0)
        w.save_episode()
    other = DatasetSpec(root=root, repo_id="local/crash", fps=30, cameras=(CameraSpec("face_view", H, W),),
                        state_names=("j0", "jX"), action_names=JOINTS)
    with pytest.raises(DatasetSpecError, match=r"fps 10 on disk, 30 configured.*joint names"):
        DatasetWriter(other)
    with DatasetWriter(spec_for(root)) as w, pytest.raises(DatasetStateError, match="open for writing by pid"):
        DatasetWriter(spec_for(root))
    with DatasetWriter(spec_for(root, min_free_mb=1e12)) as w, pytest.raises(DatasetWriteError, match="MB free"):
        w.start_episode()
    with pytest.raises(DatasetSpecError, match="repo_id"):
        DatasetSpec(root=root, repo_id="no-slash", fps=10, cameras=(CameraSpec("a", 2, 2),), state_names=("a",),
                    action_names=("a",))


def test_plain_lerobot_loses_saved_episodes_on_kill_before_finalize(crashed: dict) -> None:  # type: ignore[type-arg]
    """The trap this writer exists for (so the tests below can fail): LeRobot alone, SIGKILL after
    save_episode of episode 1 but before finalize, leaves a folder LeRobot cannot load at all."""
    root, run = crashed["plain"]
    assert run.returncode == -9 and "SAVED 1" in run.stdout, run.stderr[-2000:]
    with pytest.raises(Exception):  # noqa: B017 - any failure to load proves the point
        ds = lerobot_datasets.load_dataset("local/crash", root)
        ds[0]


@pytest.mark.parametrize("mode", ["after_save_episode", "before_commit"])
def test_sigkill_loses_only_the_episode_in_progress(crashed: dict, mode: str) -> None:  # type: ignore[type-arg]
    root, run = crashed[mode]  # episodes 0 and 1 saved, killed while saving episode 2
    assert run.returncode == -9, f"child was not killed: {run.stdout[-500:]} {run.stderr[-2000:]}"
    assert "SAVED 1" in run.stdout and "SAVED 2" not in run.stdout
    with DatasetWriter(spec_for(root)) as w:
        report = w.recovery
        assert report.committed_episodes == 2 and report.repaired, report.summary()
        assert any(q.startswith("data/") for q in report.quarantined), report.quarantined
        assert report.quarantine_dir is not None and report.quarantine_dir.is_dir()
        _check_episodes(root, [0, 1])
        _write(w, 2)  # the dataset goes on where it was
        w.save_episode()
    _check_episodes(root, [0, 1, 2])


def test_full_disk_is_an_error_and_the_writer_goes_on_once_space_is_free(crashed: dict) -> None:  # type: ignore[type-arg]
    if "disk_full" not in crashed:
        pytest.skip("needs unshare + mount (util-linux) to make a small private tmpfs")
    _, run = crashed["disk_full"]
    if "mount:" in run.stderr and "REPORT" not in run.stdout:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace here: {run.stderr.strip()[-300:]}")
    line = next((x for x in run.stdout.splitlines() if x.startswith("REPORT ")), None)
    assert line, f"no report: rc {run.returncode}\n{run.stdout[-1500:]}\n{run.stderr[-3000:]}"
    report = json.loads(line[len("REPORT "):])
    assert report["saved"] == [0, 1], report
    assert "No space left on device" in report["error"] or "MB free" in report["error"], report["error"]
    assert report["episodes_after_error"] == 2
    assert report["episodes_final"] == 3 and report["loaded_episodes"] == 3
    assert report["loaded_frames"] == 3 * FRAMES and report["last_state"] == [99.0, FRAMES - 1]


def test_state_folder_is_a_hidden_sibling(tmp_path: Path) -> None:
    assert state_dir_for(tmp_path / "ds") == tmp_path / ".ds.wallx_ros"


def test_streaming_encoding_round_trip(tmp_path: Path) -> None:
    """LeRobot's streaming encoder (videos encoded while recording, no PNG frames) through the same writer."""
    root = tmp_path / "ds"
    with DatasetWriter(spec_for(root, streaming_encoding=True)) as w:
        _write(w, 0)
        assert not (root / "images").exists(), "streaming encoding should write no PNG frames"
        w.save_episode()
    _check_episodes(root, [0])


def test_video_encoder_prints_no_banners(tmp_path: Path) -> None:
    """SVT-AV1 (the default codec) logs a ~25-line banner per encoder it opens: errors only on the console."""
    snippet = ("import sys, dataclasses; sys.path.insert(0, 'test'); from pathlib import Path; "
               "from dataset_child import spec_for; from test_dataset_writer import _write; "
               "from wallx_ros.dataset.writer import DatasetWriter; "
               f"spec = dataclasses.replace(spec_for(Path({str(tmp_path / 'ds')!r})), video_codec='libsvtav1'); "
               "w = DatasetWriter(spec); _write(w, 0); w.save_episode(); w.close()")
    env = subprocess_env()
    env.pop("SVT_LOG", None)
    run = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, env=env, cwd=str(REPO_ROOT),
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert list((tmp_path / "ds" / "videos").rglob("*.mp4")), "no video was written"
    assert "Svt[" not in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
