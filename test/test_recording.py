"""dataset.recording.Recorder without ROS: stamped samples -> aligned frames -> LeRobot dataset."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from wallx_ros.dataset.recording import Recorder, RecorderConfig
from wallx_ros.dataset.spec import CameraSpec, DatasetSpec
from wallx_ros.policy import lerobot_compat

MS = 1_000_000
FPS = 10


def _recorder(root: Path, **kw: object) -> Recorder:
    spec = DatasetSpec(root=root, repo_id="local/rec", fps=FPS, cameras=(CameraSpec("face_view", 1, 1),),
                       state_names=("a", "b"), action_names=("a", "b"), video_codec="h264", image_writer_threads=0)
    return Recorder(RecorderConfig(dataset=spec, max_age_s=0.15, watermark_delay_s=0.05, start_timeout_s=0.5,
                                   **kw))  # type: ignore[arg-type]


def _feed(rec: Recorder, t0: int, n: int, gap: range = range(0)) -> None:
    """n samples of every stream every 50 ms from t0 (the camera skips the steps in ``gap``)."""
    for k in range(n):
        stamp = t0 + k * 50 * MS
        if k not in gap:
            rec.push_image("face_view", stamp, np.full((8, 12, 3), k, np.uint8))
        rec.push_state(stamp, np.array([k, 0.5], np.float32))
        rec.push_action(stamp, np.array([-k, 1.5], np.float32))
        rec.tick(stamp)


def test_episode_frames_follow_the_alignment_rule_and_stale_frames_are_dropped(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds")
    try:
        ok, msg = rec.start("stack the cups", 0)
        assert not ok and "no image yet from cameras ['face_view']" in msg  # never started without cameras
        rec.push_image("face_view", 0, np.zeros((8, 12, 3), np.uint8))
        ok, msg = rec.start("stack the cups", 1 * MS)
        assert ok, msg
        _feed(rec, 10 * MS, 40, gap=range(10, 16))  # the camera stalls for 300 ms > max age
        ok, msg = rec.stop(True, 10 * MS + 39 * 50 * MS)
        assert ok and "episode 0 saved" in msg, msg
        status = rec.status()
        assert status.episodes == 1 and status.state == "idle" and status.dropped == 1
        # no open episode: no episode frames (a test once took the saved episode's count for the next one's)
        assert status.episode_frames == 0 and status.total_frames > 0
        assert status.alignment is not None and status.alignment.dropped_stale["face_view"] == status.dropped
        assert not rec.start("", 0)[0]  # an empty instruction is refused
    finally:
        rec.close(False, 0)
    ds = lerobot_compat.load_dataset("local/rec", tmp_path / "ds")
    data = ds.hf_dataset.with_format("numpy")[:]
    ks = data["observation.state"][:, 0]
    # frames every 100 ms take sample k = 2 * frame (latest at or before). The camera's last sample before
    # the stall (k = 9, 460 ms) is 150 ms old at the 610 ms frame (kept: age <= max age) and 250 ms old at
    # 710 ms (dropped); at 810 ms the camera is back.
    assert list(np.diff(ks)).count(4.0) == 1 and set(np.diff(ks)) == {2.0, 4.0}, ks
    np.testing.assert_array_equal(data["action"][:, 0], -ks)
    assert tuple(ds.meta.features["observation.images.face_view"]["shape"]) == (8, 12, 3)


def test_max_episode_length_saves_automatically(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds", max_episode_s=1.0)
    try:
        rec.push_image("face_view", 0, np.zeros((8, 12, 3), np.uint8))
        assert rec.start("t", 0)[0]
        _feed(rec, 10 * MS, 60)
        deadline = time.monotonic() + 60
        while rec.status().episodes < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        status = rec.status()
        assert status.episodes == 1 and status.last_saved is not None
        assert status.last_saved.frames == FPS  # exactly one second, not more frames released while saving
    finally:
        rec.close(False, 0)


def test_a_camera_that_changed_resolution_is_refused_at_start(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds")
    try:
        rec.push_image("face_view", 0, np.zeros((8, 12, 3), np.uint8))
        assert rec.start("t", 0)[0]
        _feed(rec, 10 * MS, 10)
        assert rec.stop(True, 10 * MS + 9 * 50 * MS)[0]
        rec.push_image("face_view", 10**9, np.zeros((16, 24, 3), np.uint8))
        ok, msg = rec.start("t", 10**9)
        assert not ok and "(16, 24)" in msg and "(8, 12)" in msg, msg
    finally:
        rec.close(False, 0)


def test_input_ended_keeps_only_the_frames_every_stream_reached(tmp_path: Path) -> None:
    """At SIGINT the node stops receiving: the joint states still in flight never arrive. Closing with the
    watermark ``now`` would pair the last state that came with newer images; ``input_ended`` keeps only the
    frames every stream reached, and says how many it left out."""
    rec = _recorder(tmp_path / "ds")
    try:
        rec.push_image("face_view", 0, np.zeros((8, 12, 3), np.uint8))
        assert rec.start("t", 0)[0]
        for k in range(40):  # every 50 ms; the state's last 10 samples are still in flight at the signal
            stamp = 10 * MS + k * 50 * MS
            rec.push_image("face_view", stamp, np.full((8, 12, 3), k, np.uint8))
            if k < 30:
                rec.push_state(stamp, np.array([k, 0.5], np.float32))
            rec.push_action(stamp, np.array([-k, 1.5], np.float32))
        message = rec.close(True, 10 * MS + 39 * 50 * MS, input_ended=True)
        # frames every 100 ms from 10 ms; the state reached k = 29 (1460 ms): frames 0..14 are complete, and
        # 15..19 (1510..1910 ms) are left out
        assert "episode 0 saved: 15 frames" in message and "5 frames after the slowest stream" in message, message
    finally:
        rec.close(False, 0)
    data = lerobot_compat.load_dataset("local/rec", tmp_path / "ds").hf_dataset.with_format("numpy")[:]
    np.testing.assert_array_equal(data["observation.state"][:, 0], np.arange(0, 30, 2))
    np.testing.assert_array_equal(data["action"][:, 0], -np.arange(0, 30, 2))
