"""wallx-ros-bag2dataset on input that cannot be converted one to one, and driven by command-line flags only.

Bags come from ``bag_fixtures.make_recording`` (every value known). Image datasets (PNG, lossless) so that
every frame's image is checked bit for bit: which camera frame a dataset frame took says whether time was
shifted (frames closed up over a gap) or lagged (the previous image taken although a nearer one existed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import CAMERAS, JOINTS, image_of, make_recording, state_at

from wallx_ros.cli import bag2dataset
from wallx_ros.dataset.conversion_ledger import INCOMPLETE_MARKER
from wallx_ros.dataset.dataset_reader import DatasetReader
from wallx_ros.dataset.spec import SAMPLE_AGE_KEY

START_S = 100.0  # make_recording's first frame time


def _flags(rec_path: Path, root: Path, fps: int = 10, *extra: str) -> list[str]:
    return [str(rec_path), "--root", str(root), "--camera", "face_view=/face_view/image_raw", "--camera",
            "left_wrist_view=/left_wrist_view/image_raw", "--state", "/joint_states", "--joints", ",".join(JOINTS),
            "--action", "/teleop/command", "--fps", str(fps), "--instruction", "pick up the cube", "--no-videos",
            "--no-progress", "--max-age-s", "0.2", *extra]


def _frames_by_episode(root: Path) -> list[list]:  # type: ignore[type-arg]
    episodes: dict[int, list] = {}  # type: ignore[type-arg]
    for frame in DatasetReader(root).frames():
        episodes.setdefault(frame.episode_index, []).append(frame)
    return [episodes[k] for k in sorted(episodes)]


def test_jittered_camera_stamps_take_the_nearest_image(tmp_path: Path) -> None:
    """Camera stamps within +-5 ms of a 20 fps grid. Before the fix (newest image at or before the frame time,
    grid anchored on a jittered stamp) a frame took the previous image whenever its camera stamp came a few ms
    late: a 50 ms lag on a share of the frames. Now every frame takes the image of its own instant."""
    rec = make_recording(tmp_path / "bag", fps=20, segments=(60,), camera_jitter_ms=5.0)
    report_path = tmp_path / "report.json"
    assert bag2dataset.main([*_flags(rec.path, tmp_path / "ds", 20), "--report-json", str(report_path)]) == 0
    (frames,) = _frames_by_episode(tmp_path / "ds")
    assert len(frames) == 60
    lagging = [i for i, f in enumerate(frames) for c, cam in enumerate(CAMERAS)
               if not np.array_equal(f.images[cam], image_of(i, c))]
    assert not lagging, f"frames that took another image than their own: {lagging}"
    for i, frame in enumerate(frames):  # the state as of the frame time: the sample of the frame's instant
        np.testing.assert_array_equal(frame.state, state_at(START_S + i / 20).astype(np.float32))
    report = json.loads(report_path.read_text())
    skew = report["bags"][0]["skew_ms"]
    assert 0 < skew["face_view"]["max_ms"] <= 10.0 and skew["face_view"]["p50_ms"] <= 5.0, skew
    assert report["repairs"] == [] and report["bags"][0]["gaps"] == []


@pytest.mark.parametrize("policy", ["split", "hold", "fail"])
def test_a_camera_dropout_never_shifts_time(tmp_path: Path, policy: str, capsys: pytest.CaptureFixture[str]) -> None:
    """face_view sends nothing for frames 3..8 (0.6 s at 10 fps; max_age_s 0.2). Frames 3, 4 and 7, 8 have an
    image within 0.2 s; 5 and 6 do not. Before the fix those two were dropped and the rest renumbered: every
    later frame sat 0.2 s early, and the run said 'complete'."""
    rec = make_recording(tmp_path / "bag", fps=10, segments=(16,), camera_gap=(3, 9))
    report_path = tmp_path / "report.json"
    rc = bag2dataset.main([*_flags(rec.path, tmp_path / "ds"), "--gap-policy", policy, "--strict",
                           "--report-json", str(report_path)])
    err = capsys.readouterr().err
    face = {0: 0, 1: 1, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 9, 8: 9}  # image face_view takes, by frame
    if policy == "fail":
        assert rc == 1 and "gap_policy fail" in err and "Traceback" not in err, err
        assert (tmp_path / "ds" / "meta" / INCOMPLETE_MARKER).exists()
        return
    assert rc == bag2dataset.EXIT_STRICT and "strict: the dataset is complete" in err, err
    episodes = _frames_by_episode(tmp_path / "ds")
    kept = [[0, 1, 2, 3, 4], list(range(7, 16))] if policy == "split" else [list(range(16))]
    assert [[f.frame_index for f in ep] for ep in episodes] == [list(range(len(k))) for k in kept]
    for ep, ks in zip(episodes, kept, strict=True):
        for frame, k in zip(ep, ks, strict=True):
            assert frame.timestamp_s == pytest.approx(frame.frame_index / 10, abs=1e-4)
            np.testing.assert_array_equal(frame.state, state_at(START_S + k / 10).astype(np.float32))
            np.testing.assert_array_equal(frame.images["face_view"], image_of(face.get(k, k), 0))
            np.testing.assert_array_equal(frame.images["left_wrist_view"], image_of(k, 1))
    report = json.loads(report_path.read_text())
    gaps = report["bags"][0]["gaps"]
    if policy == "split":
        assert [(g["kind"], g["streams"], g["frames"]) for g in gaps] == [("split", ["face_view"], 2)]
        assert gaps[0]["at_s"] == pytest.approx(0.5, abs=0.01) and report["bags"][0]["frames_dropped"] == 2
    else:
        assert [(g["kind"], g["streams"], g["frames"]) for g in gaps] == [("hold", ["face_view"], 2)]
        assert report["bags"][0]["held_frames"] == 2
        from wallx_ros.lerobot import datasets as lerobot_datasets

        ds = lerobot_datasets.load_dataset("local/wallx_demos", tmp_path / "ds")
        ages = np.stack(ds.hf_dataset.with_format("numpy")[:][SAMPLE_AGE_KEY])
        np.testing.assert_allclose(ages[3:9, 0], [0.1, 0.2, 0.3, 0.4, -0.2, -0.1], atol=1e-6)
        assert ds.meta.features[SAMPLE_AGE_KEY]["names"] == ["face_view", "left_wrist_view", "observation.state",
                                                            "action"]
    assert report["repairs"] and report["complete"]


def test_flags_alone_map_the_topics_and_read_the_joints_from_the_bag(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", segments=(6,))
    args = _flags(rec.path, tmp_path / "ds")
    joints_at = args.index("--joints")
    del args[joints_at:joints_at + 2]  # joints of the first joint state message, in its order
    assert bag2dataset.main(args) == 0
    reader = DatasetReader(tmp_path / "ds")
    assert set(reader.state_names) == {*JOINTS, "gripper_aux"} and reader.cameras == CAMERAS
    assert reader.num_frames == 6


def test_state_only_dataset(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", segments=(6,))
    assert bag2dataset.main([str(rec.path), "--root", str(tmp_path / "ds"), "--no-cameras", "--state",
                             "/joint_states", "--joints", ",".join(JOINTS), "--action", "/teleop/command", "--fps",
                             "10", "--instruction", "t", "--no-progress"]) == 0
    frames = list(DatasetReader(tmp_path / "ds").frames())
    assert len(frames) == 6 and all(not f.images for f in frames)
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.state, state_at(START_S + i / 10).astype(np.float32))


@pytest.mark.parametrize(("change", "expected"), [
    (["--camera", "face_view=/nope/image_raw"],
     r"no topic /nope/image_raw \(camera face_view\); its topics of a fitting type .*: /face_view/image_raw, "
     r"/left_wrist_view/image_raw\. Fix"),
    (["--state", "/arm/joints"], r"no topic /arm/joints \(joint states\); its topics of a fitting type .*: "
                                 r"/joint_states\. Fix"),
    (["--camera", "face_view"], r"--camera takes KEY=TOPIC"),
])
def test_a_wrong_mapping_is_one_line_naming_only_candidates(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            change: list[str], expected: str) -> None:
    import re

    rec = make_recording(tmp_path / "bag", segments=(3,))
    args = _flags(rec.path, tmp_path / "ds")
    if change[0] == "--camera":  # instead of the face_view mapping
        args[args.index("--camera") + 1] = change[1]
    else:
        args += change
    rc = bag2dataset.main(args)
    err = capsys.readouterr().err
    assert rc == 1 and re.search(expected, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2, err  # the error and the dataset note


def test_without_a_mapping_the_error_lists_the_candidates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = make_recording(tmp_path / "bag", segments=(3,))
    base = [str(rec.path), "--root", str(tmp_path / "ds"), "--fps", "10", "--instruction", "t", "--no-progress"]
    assert bag2dataset.main(base) == 1
    err = capsys.readouterr().err
    assert "no cameras given" in err and "/face_view/image_raw, /left_wrist_view/image_raw" in err, err
    assert "/joint_states" not in err.splitlines()[0]
    assert bag2dataset.main([*base, "--no-cameras"]) == 1
    err = capsys.readouterr().err
    assert "no action topic given" in err and "candidates" in err and "/teleop/command" in err, err
    assert "/joint_states," not in err and "/joint_states)" not in err  # the state topic is no action candidate


def test_a_joint_the_bag_lacks_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = make_recording(tmp_path / "bag", segments=(4,))
    rc = bag2dataset.main([*_flags(rec.path, tmp_path / "ds"), "--joints", "not_a_joint"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and err.startswith("error: "), err
    assert "not_a_joint" in err

