"""rosbag2 <-> LeRobot dataset conversion on bags written here with rosbags' own writer.

Every value the converter outputs is compared with what the test wrote (images bit-equal in image-mode
datasets: bgr8 raw and png compressed are lossless), read back with LeRobotDataset through wallx_ros.lerobot.datasets.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import CAMERAS, JOINTS, make_recording, params_yaml

from wallx_ros.cli import bag2dataset
from wallx_ros.dataset.bag_config import BagConversionConfig, load_params_file
from wallx_ros.dataset.bag_conversion import convert_bags
from wallx_ros.dataset.bag_reader import RosBag
from wallx_ros.dataset.conversion_ledger import INCOMPLETE_MARKER, LEDGER_FILENAME
from wallx_ros.dataset.dataset_reader import DatasetReader
from wallx_ros.dataset.dataset_to_bag import ROUND_TRIP_CONFIG, BagExportConfig, dataset_to_bag
from wallx_ros.dataset.errors import (
    BagReadError,
    ConversionError,
    ImageSizeChangedError,
    MissingTopicError,
    UnsupportedMessageTypeError,
)


def _config(tmp: Path, **overrides: object) -> BagConversionConfig:
    return BagConversionConfig.from_params(load_params_file(params_yaml(tmp / "params.yaml", **overrides)))


def _assert_dataset_equals(root: Path, episodes: list[dict], lossless: bool = True) -> DatasetReader:
    reader = DatasetReader(root)
    assert reader.num_episodes == len(episodes)
    assert reader.state_names == JOINTS and reader.action_names == JOINTS and reader.cameras == CAMERAS
    got = list(reader.frames())
    want = [(e, i, f) for e, ep in enumerate(episodes) for i, f in enumerate(ep["frames"])]
    assert len(got) == len(want)
    for frame, (ep, i, expected) in zip(got, want, strict=True):
        assert (frame.episode_index, frame.frame_index) == (ep, i)
        assert frame.timestamp_s == pytest.approx(i / reader.fps, abs=1e-4)
        np.testing.assert_array_equal(frame.state, expected["state"].astype(np.float32))
        np.testing.assert_array_equal(frame.action, expected["action"].astype(np.float32))
        for cam in CAMERAS:
            if lossless:
                np.testing.assert_array_equal(frame.images[cam], expected["images"][cam])
            else:  # video: lossy, but clearly the same picture
                diff = np.abs(frame.images[cam].astype(int) - expected["images"][cam].astype(int)).mean()
                assert diff < 12, f"{cam} frame {i}: mean abs diff {diff}"
    return reader


@pytest.mark.parametrize(("storage", "compression", "transport", "action"), [
    ("mcap", "none", "raw", "JointTrajectory"),
    ("sqlite3", "none", "compressed", "JointState"),
    ("mcap", "message", "compressed", "Float64MultiArray"),
    ("sqlite3", "file", "raw", "JointTrajectory"),
])
def test_bag_converts_to_the_values_written(tmp_path: Path, storage: str, compression: str, transport: str,
                                            action: str) -> None:
    rec = make_recording(tmp_path / "bag", storage=storage, compression=compression, transport=transport,
                         action=action, segments=(6,))
    cfg = _config(tmp_path, camera_transport=transport, action_type=action)
    report = convert_bags([rec.path], cfg, tmp_path / "ds")
    assert report.complete and report.frames == 6 and report.bags[0].frames_dropped == 0
    reader = _assert_dataset_equals(tmp_path / "ds", rec.episodes)
    assert {f.task for f in reader.frames()} == {"pick up the cube"}
    assert not (tmp_path / "ds" / "meta" / INCOMPLETE_MARKER).exists()


def test_marker_split_instruction_topic_and_idempotent_rerun(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", split="marker", segments=(5, 4), instruction="stack the cups")
    cfg = _config(tmp_path, episode_split="marker", episode_marker_topic="/episode", instruction_topic="/task")
    report = convert_bags([rec.path], cfg, tmp_path / "ds")
    assert report.bags[0].episodes_written == [0, 1]
    assert report.bags[0].discarded_episodes == 2  # the two "start ... discard" takes
    reader = _assert_dataset_equals(tmp_path / "ds", rec.episodes)
    assert [f.task for f in reader.frames()] == ["stack the cups #0"] * 5 + ["stack the cups #1"] * 4

    again = convert_bags([rec.path], cfg, tmp_path / "ds")  # nothing new: no duplicated episodes
    assert again.bags[0].already_converted and again.total_episodes == 2
    _assert_dataset_equals(tmp_path / "ds", rec.episodes)
    ledger = json.loads((tmp_path / "ds" / "meta" / LEDGER_FILENAME).read_text())
    assert [(e["episode_index"], e["segment"]) for e in ledger["episodes"]] == [(0, 0), (1, 2)]
    assert ledger["complete"] is True


def test_gap_split_and_a_second_bag_appended_once(tmp_path: Path) -> None:
    first = make_recording(tmp_path / "bags" / "a", split="gap", segments=(4, 3))
    second = make_recording(tmp_path / "bags" / "b.mcap_dir", segments=(5,), start_s=500.0)
    cfg = _config(tmp_path, episode_split="gap", episode_gap_s=1.0)
    assert convert_bags([first.path], cfg, tmp_path / "ds").total_episodes == 2
    # the folder of both bags: the first is skipped by content identity, the second appended
    report = bag2dataset.main([str(tmp_path / "bags"), "--root", str(tmp_path / "ds"), "--params-file",
                               str(tmp_path / "params.yaml"), "--episode-split", "gap", "--no-progress", "-q"])
    assert report == 0
    _assert_dataset_equals(tmp_path / "ds", first.episodes + second.episodes)


def test_video_dataset_with_streaming_encoder(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", segments=(12,), size=(48, 64))
    cfg = _config(tmp_path, use_videos=True, video_codec="h264")
    assert cfg.streaming_encoding
    report = convert_bags([rec.path], cfg, tmp_path / "ds")
    assert report.complete and report.frames == 12
    _assert_dataset_equals(tmp_path / "ds", rec.episodes, lossless=False)


def test_round_trip_dataset_bag_dataset(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", split="marker", segments=(5, 3), instruction="open the drawer")
    cfg = _config(tmp_path, episode_split="marker", episode_marker_topic="/episode", instruction_topic="/task")
    convert_bags([rec.path], cfg, tmp_path / "ds1")
    summary = dataset_to_bag(DatasetReader(tmp_path / "ds1"), tmp_path / "replay", BagExportConfig())
    assert (summary.episodes, summary.frames) == (2, 8)
    with RosBag(tmp_path / "replay") as bag:  # the policy node's topics
        assert {"/face_view/image_raw", "/left_wrist_view/image_raw", "/joint_states",
                "/wallx_policy/instruction"} <= set(bag.topics)
    params = tmp_path / "replay" / ROUND_TRIP_CONFIG
    assert bag2dataset.main([str(tmp_path / "replay"), "--root", str(tmp_path / "ds2"), "--params-file",
                             str(params), "--repo-id", "local/round_trip", "--no-videos", "--no-progress"]) == 0
    back = _assert_dataset_equals(tmp_path / "ds2", rec.episodes)
    assert [f.task for f in back.frames()] == ["open the drawer #0"] * 5 + ["open the drawer #1"] * 3


# -- errors -----------------------------------------------------------------------------------------------
def test_missing_topic_and_unknown_type_are_named(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", segments=(3,))
    with pytest.raises(MissingTopicError, match=r"/right_wrist_view/image_raw.*its topics of a fitting type .*: "
                                                r"/face_view/image_raw, /left_wrist_view/image_raw\. Fix") as info:
        convert_bags([rec.path], _config(tmp_path, cameras=["face_view", "right_wrist_view"]), tmp_path / "ds")
    assert "/joint_states" not in str(info.value) and "/teleop/command" not in str(info.value)  # only candidates
    with pytest.raises(MissingTopicError, match=r"no topic /arm/joints \(joint states\); its topics of a fitting "
                                                r"type \(sensor_msgs/msg/JointState\): /joint_states\. Fix"):
        convert_bags([rec.path], _config(tmp_path, joint_states_topic="/arm/joints"), tmp_path / "ds")
    with pytest.raises(UnsupportedMessageTypeError,
                       match=r"/joint_states \(camera face_view\) carries sensor_msgs/msg/JointState.*supported: "
                             r"sensor_msgs/msg/CompressedImage, sensor_msgs/msg/Image"):
        convert_bags([rec.path], _config(tmp_path, topic_remaps=["face_view/image_raw:=/joint_states"]),
                     tmp_path / "ds")
    assert not (tmp_path / "ds").exists(), "a failed check must not create a dataset"
    assert bag2dataset.main([str(rec.path), "--root", str(tmp_path / "ds"), "--params-file",
                             str(params_yaml(tmp_path / "p.yaml", action_topic="/nope")), "--no-progress"]) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "no_metadata_storage"])
def test_corrupt_or_truncated_bag_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    rec = make_recording(tmp_path / "bag", segments=(4,))
    mcap = next(rec.path.glob("*.mcap"))
    data = mcap.read_bytes()
    if damage == "garbage":
        mcap.write_bytes(b"this is not an mcap file" * 100)
    elif damage == "truncated":
        mcap.write_bytes(data[: len(data) // 2])
    else:
        mcap.unlink()
    with pytest.raises(BagReadError, match=str(rec.path)):
        convert_bags([rec.path], _config(tmp_path), tmp_path / "ds")


def test_image_size_change_keeps_saved_episodes_and_marks_incomplete(tmp_path: Path) -> None:
    good = make_recording(tmp_path / "bags" / "a_good", segments=(4,))
    make_recording(tmp_path / "bags" / "b_bad", segments=(6,), size_change_at=3, start_s=300.0)
    rc = bag2dataset.main([str(tmp_path / "bags"), "--root", str(tmp_path / "ds"), "--params-file",
                           str(params_yaml(tmp_path / "p.yaml")), "--no-progress"])
    assert rc == 1
    marker = tmp_path / "ds" / "meta" / INCOMPLETE_MARKER
    assert "ImageSizeChangedError" in marker.read_text()
    _assert_dataset_equals(tmp_path / "ds", good.episodes)  # finalized: the saved episode loads
    with pytest.raises(ImageSizeChangedError, match=r"face_view .* is 32x32 but .* is 32x24"):
        convert_bags([tmp_path / "bags" / "b_bad"], _config(tmp_path), tmp_path / "ds")
    shutil.rmtree(tmp_path / "bags" / "b_bad")
    assert bag2dataset.main([str(tmp_path / "bags"), "--root", str(tmp_path / "ds"), "--params-file",
                             str(tmp_path / "p.yaml"), "--no-progress"]) == 0
    assert not marker.exists()
    _assert_dataset_equals(tmp_path / "ds", good.episodes)


def test_non_monotonic_stamps_fail_or_are_skipped_on_request(tmp_path: Path) -> None:
    rec = make_recording(tmp_path / "bag", segments=(6,), backwards_at=3)
    with pytest.raises(ConversionError, match=r"face_view.*goes backwards.*skip-non-monotonic"):
        convert_bags([rec.path], _config(tmp_path), tmp_path / "ds")
    report = convert_bags([rec.path], _config(tmp_path, skip_non_monotonic=True), tmp_path / "ds2")
    assert report.complete and report.bags[0].non_monotonic_ignored == 1
    frames = list(DatasetReader(tmp_path / "ds2").frames())
    assert len(frames) == 6  # frame 3 takes the previous face_view image (within max_age_s)
    np.testing.assert_array_equal(frames[3].images["face_view"], rec.episodes[0]["frames"][2]["images"]["face_view"])
    np.testing.assert_array_equal(frames[3].state, rec.episodes[0]["frames"][3]["state"].astype(np.float32))


def test_dataset2bag_cli_writes_bag_and_open_loop_report(tmp_path: Path, tiny_checkpoint: Path) -> None:
    from wallx_ros.cli import dataset2bag
    from wallx_ros.core.types import Observation
    from wallx_ros.policy import BackendConfig, load_backend
    from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

    rec = make_recording(tmp_path / "bag", fps=50, segments=(40,), cameras=DEFAULT_CAMERAS, joints=ALOHA_JOINTS,
                         size=(48, 64))
    params = params_yaml(tmp_path / "p.yaml", cameras=list(DEFAULT_CAMERAS), joint_names=list(ALOHA_JOINTS), fps=50)
    assert bag2dataset.main([str(rec.path), "--root", str(tmp_path / "ds"), "--params-file", str(params),
                             "--no-progress"]) == 0
    rc = dataset2bag.main([str(tmp_path / "ds"), str(tmp_path / "replay"), "--camera-transport", "compressed",
                           "--checkpoint", str(tiny_checkpoint), "--allow-random-weights", "--max-chunks", "2",
                           "--stride", "20", "--report-dir", str(tmp_path / "report"), "--no-progress"])
    assert rc == 0
    with RosBag(tmp_path / "replay") as bag:
        assert bag.topics["/face_view/image_raw/compressed"].count == 40
        assert bag.topics["/joint_states"].msgtype == "sensor_msgs/msg/JointState"
    report = json.loads((tmp_path / "report" / "open_loop_report.json").read_text())
    assert report["chunks"] == 2 and [c["frame"] for c in report["chunk_starts"]] == [0, 20]
    assert report["joints"] == list(ALOHA_JOINTS)
    png = (tmp_path / "report" / "open_loop_report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # the report's numbers are the backend's chunks vs the recorded actions, joint by joint
    backend = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))
    frames = list(DatasetReader(tmp_path / "ds").frames())
    recorded = np.stack([f["action"] for f in rec.episodes[0]["frames"]]).astype(np.float64)
    errors = []
    for start in (0, 20):
        f = frames[start]
        chunk = backend.predict_chunk(Observation(images=f.images, state=f.state, instruction=f.task,
                                                  stamp_ns=0)).actions
        n = min(chunk.shape[0], 40 - start)  # compared within the episode only
        errors.append(np.abs(chunk[:n] - recorded[start:start + n]))
    assert report["compared_steps"] == sum(e.shape[0] for e in errors) == 32 + 20
    assert report["mae_by_horizon"][0] == pytest.approx(np.mean([e[0].mean() for e in errors]), rel=1e-6)
    all_err = np.concatenate(errors)
    assert report["mae_per_joint"][ALOHA_JOINTS[3]] == pytest.approx(all_err[:, 3].mean(), rel=1e-6)


def test_sigkill_mid_conversion_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    """A real kill: the converter process dies after its first saved episode; the same command again
    finishes the job, and the dataset holds each bag episode exactly once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ros_harness import REPO_ROOT

    rec = make_recording(tmp_path / "bag", split="gap", segments=(3, 3, 3))
    params = params_yaml(tmp_path / "p.yaml", episode_split="gap")
    cmd = [sys.executable, "-m", "wallx_ros.cli.bag2dataset", str(rec.path), "--root", str(tmp_path / "ds"),
           "--params-file", str(params), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ledger = tmp_path / "ds" / "meta" / LEDGER_FILENAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if ledger.exists() and json.loads(ledger.read_text())["episodes"]:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before it could be killed:\n{proc.communicate()[0].decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert (tmp_path / "ds" / "meta" / INCOMPLETE_MARKER).exists()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_dataset_equals(tmp_path / "ds", rec.episodes)
    assert not (tmp_path / "ds" / "meta" / INCOMPLETE_MARKER).exists()
