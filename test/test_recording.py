"""dataset.recording.Recorder without ROS: stamped samples -> aligned frames -> LeRobot dataset.

Sample k of every stream is stamped ``t0 + k * 50 ms`` and carries k (state) / -k (action) / an image of gray
level k, so the dataset says, frame by frame, which instant each value came from: any shift of time (frames
closed up over a gap) or any frame lost between episodes shows as a wrong k.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wallx_ros.core.frame_alignment import AlignedFrame
from wallx_ros.dataset.recording import Recorder, RecorderConfig
from wallx_ros.dataset.spec import SAMPLE_AGE_KEY, CameraSpec, DatasetSpec
from wallx_ros.dataset.writer_queue import WriterQueue
from wallx_ros.lerobot import datasets as lerobot_datasets

MS = 1_000_000
FPS = 10
T0 = 10 * MS


def _recorder(root: Path, cameras: tuple[str, ...] = ("face_view",), **kw: object) -> Recorder:
    spec = DatasetSpec(root=root, repo_id="local/rec", fps=FPS, cameras=tuple(CameraSpec(c, 1, 1) for c in cameras),
                       state_names=("a", "b"), action_names=("a", "b"), video_codec="h264", image_writer_threads=0,
                       streaming_encoding=bool(cameras), min_free_mb=0.0)
    return Recorder(RecorderConfig(dataset=spec, max_age_s=0.15, watermark_delay_s=0.05, start_timeout_s=0.5,
                                   **kw))  # type: ignore[arg-type]


def _feed(rec: Recorder, n: int, gap: range = range(0), first: int = 0) -> None:
    """Samples k = first..n-1 of every stream every 50 ms from T0 (the camera skips the steps in ``gap``)."""
    for k in range(first, n):
        stamp = T0 + k * 50 * MS
        if k not in gap:
            rec.push_image("face_view", stamp, np.full((8, 12, 3), (4 * k) % 256, np.uint8))
        rec.push_state(stamp, np.array([k, 0.5], np.float32))
        rec.push_action(stamp, np.array([-k, 1.5], np.float32))
        rec.tick(stamp)


def _start(rec: Recorder, task: str = "stack the cups") -> None:
    rec.push_image("face_view", 0, np.zeros((8, 12, 3), np.uint8))
    ok, msg = rec.start(task, 1 * MS)
    assert ok, msg


def _episodes(root: Path) -> list[dict[str, np.ndarray]]:
    ds = lerobot_datasets.load_dataset("local/rec", root)
    data = ds.hf_dataset.with_format("numpy")[:]
    out = []
    for ep in range(ds.num_episodes):
        rows = data["episode_index"] == ep
        out.append({k: np.asarray(v)[rows] for k, v in data.items() if k in
                    ("observation.state", "action", "timestamp", "frame_index", SAMPLE_AGE_KEY)})
    return out


def test_a_camera_gap_splits_the_episode_and_no_frame_is_shifted(tmp_path: Path) -> None:
    """A 400 ms camera dropout: the frame whose nearest image is 250 ms away is a gap; the episode is saved up
    to it and a new one starts at the next complete frame. Before the fix the gap was closed up and every later
    frame sat 100 ms early (state k = 16 at timestamp 0.7 s instead of 0.8 s)."""
    rec = _recorder(tmp_path / "ds")
    try:
        ok, msg = rec.start("stack the cups", 0)
        assert not ok and "no image yet from cameras ['face_view']" in msg  # never started without cameras
        _start(rec)
        _feed(rec, 40, gap=range(10, 18))  # camera samples at 460 ms, then 910 ms
        ok, msg = rec.stop(True, T0 + 39 * 50 * MS)
        assert ok and "episode 1 saved" in msg and "ended by stop" in msg, msg
        status = rec.status()
        assert status.episodes == 2 and status.state == "idle" and status.dropped == 1
        assert status.last_notes is not None and status.last_notes.index == 1
        assert not rec.start("", 0)[0]  # an empty instruction is refused
    finally:
        rec.close(False, 0)
    first, second = _episodes(tmp_path / "ds")
    # frames every 100 ms from 10 ms take sample k = 2 * frame; the frame at 710 ms (k = 14) has no image
    # within 150 ms (460 / 910 ms): the first episode ends at 610 ms, the second starts at 810 ms
    np.testing.assert_array_equal(first["observation.state"][:, 0], np.arange(0, 14, 2))
    np.testing.assert_array_equal(second["observation.state"][:, 0], np.arange(16, 40, 2))
    for ep in (first, second):
        np.testing.assert_allclose(ep["timestamp"], np.arange(len(ep["timestamp"])) / FPS, atol=1e-6)
        np.testing.assert_array_equal(ep["action"][:, 0], -ep["observation.state"][:, 0])


def test_hold_repeats_the_last_image_and_records_every_age(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds", gap_policy="hold")
    try:
        _start(rec)
        _feed(rec, 30, gap=range(10, 18))
        ok, msg = rec.stop(True, T0 + 29 * 50 * MS)
        assert ok and "episode 0 saved" in msg and "1 held" in msg and "held last sample" in msg, msg
    finally:
        rec.close(False, 0)
    (ep,) = _episodes(tmp_path / "ds")
    np.testing.assert_array_equal(ep["observation.state"][:, 0], np.arange(0, 30, 2))  # nothing shifted
    ages = ep[SAMPLE_AGE_KEY]
    assert ages.shape == (15, 3)  # face_view, observation.state, action
    # the frame at 710 ms holds the 460 ms image (250 ms old); 510 / 610 ms take it as nearest within 150 ms
    np.testing.assert_allclose(ages[5:9, 0], [0.05, 0.15, 0.25, -0.1], atol=1e-6)
    np.testing.assert_allclose(ages[:, 1:], 0.0, atol=1e-6)
    info = lerobot_datasets.load_dataset("local/rec", tmp_path / "ds").meta.features[SAMPLE_AGE_KEY]
    assert info["names"] == ["face_view", "observation.state", "action"]


def test_fail_policy_saves_up_to_the_gap_and_reports_it(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds", gap_policy="fail")
    try:
        _start(rec)
        _feed(rec, 30, gap=range(10, 18))
        status = rec.status()
        assert status.state in ("error", "saving") and "gap_policy fail" in status.last_error, status
        assert not rec.stop(True, T0 + 29 * 50 * MS)[0]
    finally:
        rec.close(False, 0)
    (ep,) = _episodes(tmp_path / "ds")
    np.testing.assert_array_equal(ep["observation.state"][:, 0], np.arange(0, 14, 2))


def test_max_episode_length_cuts_exactly_and_continuous_recording_loses_no_frame(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds", max_episode_s=1.0, continuous=True)
    try:
        _start(rec)
        _feed(rec, 70)
        ok, msg = rec.stop(True, T0 + 69 * 50 * MS)
        assert ok and "episode 3 saved" in msg, msg
    finally:
        rec.close(False, 0)
    episodes = _episodes(tmp_path / "ds")
    assert [len(e["timestamp"]) for e in episodes] == [FPS, FPS, FPS, 5]  # exactly one second each
    ks = np.concatenate([e["observation.state"][:, 0] for e in episodes])
    np.testing.assert_array_equal(ks, np.arange(0, 70, 2))  # back to back: not one frame between episodes lost


def test_close_right_after_an_automatic_cut_saves_it_exactly_once(tmp_path: Path) -> None:
    """The auto-cut/shutdown race: SIGINT just as max_episode_s was reached. The cut's save is queued before
    close() runs; close waits for it (before the fix close() found the recorder 'saving' and discarded it)."""
    rec = _recorder(tmp_path / "ds", max_episode_s=1.0)
    _start(rec)
    _feed(rec, 24)  # 12 frames: the 11th reaches the limit, the episode is cut
    message = rec.close(True, T0 + 23 * 50 * MS, input_ended=True)
    assert message == "" and rec.status().episodes == 1 and rec.status().state == "closed"
    assert rec.close(True, 0) == ""  # idempotent
    (ep,) = _episodes(tmp_path / "ds")
    np.testing.assert_array_equal(ep["observation.state"][:, 0], np.arange(0, 20, 2))


def test_concurrent_stops_and_closes_save_the_episode_once(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds")
    _start(rec)
    _feed(rec, 20)
    answers: list[tuple[bool, str]] = []
    threads = [threading.Thread(target=lambda: answers.append(rec.stop(True, T0 + 19 * 50 * MS))) for _ in range(3)]
    for t in threads:
        t.start()
    closes = [threading.Thread(target=rec.close, args=(True, T0 + 19 * 50 * MS, True)) for _ in range(2)]
    for t in closes:
        t.start()
    for t in threads + closes:
        t.join(120)
    assert sum(ok for ok, _ in answers) <= 1, answers
    assert rec.status().episodes == 1
    assert len(_episodes(tmp_path / "ds")) == 1


def test_a_camera_that_changed_resolution_is_refused_at_start(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds")
    try:
        _start(rec, "t")
        _feed(rec, 10)
        assert rec.stop(True, T0 + 9 * 50 * MS)[0]
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
        _start(rec, "t")
        for k in range(40):  # every 50 ms; the state's last 10 samples are still in flight at the signal
            stamp = T0 + k * 50 * MS
            rec.push_image("face_view", stamp, np.full((8, 12, 3), k, np.uint8))
            if k < 30:
                rec.push_state(stamp, np.array([k, 0.5], np.float32))
            rec.push_action(stamp, np.array([-k, 1.5], np.float32))
        message = rec.close(True, T0 + 39 * 50 * MS, input_ended=True)
        # frames every 100 ms from 10 ms; the state reached k = 29 (1460 ms): frames 0..14 are complete, and
        # 15..19 (1510..1910 ms) are left out
        assert "episode 0 saved: 15 frames" in message and "5 frames after the slowest stream" in message, message
    finally:
        rec.close(False, 0)
    (ep,) = _episodes(tmp_path / "ds")
    np.testing.assert_array_equal(ep["observation.state"][:, 0], np.arange(0, 30, 2))
    np.testing.assert_array_equal(ep["action"][:, 0], -np.arange(0, 30, 2))


def test_state_only_dataset(tmp_path: Path) -> None:
    rec = _recorder(tmp_path / "ds", cameras=())
    try:
        assert rec.start("t", 0)[0]
        for k in range(20):
            stamp = T0 + k * 50 * MS
            rec.push_state(stamp, np.array([k, 0.5], np.float32))
            rec.push_action(stamp, np.array([-k, 1.5], np.float32))
            rec.tick(stamp)
        ok, msg = rec.stop(True, T0 + 19 * 50 * MS)
        assert ok, msg
    finally:
        rec.close(False, 0)
    ds = lerobot_datasets.load_dataset("local/rec", tmp_path / "ds")
    assert not ds.meta.video_keys and not ds.meta.image_keys
    np.testing.assert_array_equal(ds.hf_dataset.with_format("numpy")[:]["observation.state"][:, 0],
                                  np.arange(0, 20, 2))


def _spill_payload(k: int) -> tuple[AlignedFrame[Any], str]:
    return AlignedFrame(k, T0 + k, {"cam": np.full(1000, k), "observation.state": np.array([k, -k], np.float32)},
                        {"cam": T0 + k - 1, "observation.state": T0 + k}, held=("cam",) if k % 2 else (),
                        dropped_before=k % 3, gap_streams=("action",) if k == 4 else ()), f"task {k}"


def test_spilled_frames_come_back_equal_without_pickle() -> None:
    """The spill codec: every field and array (dtype, shape, values) back as written; a damaged file is an error."""
    from wallx_ros.dataset.errors import DatasetWriteError
    from wallx_ros.dataset.frame_spill import decode_frame, encode_frame

    for k in (0, 1, 4):
        frame, task = _spill_payload(k)
        data = encode_frame((frame, task))
        assert b"pickle" not in data and data[:2] != b"\x80\x05"
        back, back_task = decode_frame(data)
        assert back_task == task
        assert (back.index, back.stamp_ns, back.sample_stamps_ns, back.held, back.dropped_before, back.gap_streams) \
            == (frame.index, frame.stamp_ns, frame.sample_stamps_ns, frame.held, frame.dropped_before,
                frame.gap_streams)
        for name, value in frame.values.items():
            assert back.values[name].dtype == value.dtype and back.values[name].shape == value.shape
            np.testing.assert_array_equal(back.values[name], value)
        with pytest.raises(DatasetWriteError, match="left over"):
            decode_frame(data + b"x")
    with pytest.raises(DatasetWriteError, match="not a plain array"):
        encode_frame((AlignedFrame(0, 0, {"x": np.array([object()])}, {"x": 0}), ""))


def test_writer_queue_keeps_order_and_spills_to_disk(tmp_path: Path) -> None:
    queue = WriterQueue(tmp_path / "spill", ram_frames=3, segment_bytes=3 * 8000)  # 3 frames per spill file
    queue.put_command("start", "x")
    for k in range(10):
        assert queue.put_frame(_spill_payload(k))
    queue.put_command("save")
    assert queue.frames == 10 and queue.frames_on_disk == 7
    spills = sorted((tmp_path / "spill").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert len(spills) == 3 and sum(p.stat().st_size for p in spills) > 7 * 8000
    got = [queue.get() for _ in range(8)]  # start, 3 frames from memory, 4 from disk: the first file is read
    assert not spills[0].exists() and spills[1].exists()  # a read segment is deleted at once
    got += [queue.get() for _ in range(4)]
    assert [c for c, _, _ in got] == ["start"] + ["frame"] * 10 + ["save"]
    frames = [a for c, a, _ in got if c == "frame"]
    assert [f.index for f, _ in frames] == list(range(10))
    assert [t for _, t in frames] == [f"task {k}" for k in range(10)]
    assert [int(f.values["cam"][0]) for f, _ in frames] == list(range(10))
    queue.close()
    assert not list((tmp_path / "spill").iterdir())


def test_a_slow_writer_costs_disk_not_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread stalls (a long save); 2 frames fit in memory, the rest wait on disk: none is lost."""
    from wallx_ros.dataset import writer as writer_module

    rec = _recorder(tmp_path / "ds", max_queued_frames=2)
    _start(rec)
    original = writer_module.DatasetWriter.add_frame
    gate = threading.Event()

    def slow_add_frame(self: writer_module.DatasetWriter, *args: object, **kwargs: object) -> None:
        gate.wait(60)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer_module.DatasetWriter, "add_frame", slow_add_frame)
    try:
        _feed(rec, 40)
        deadline = time.monotonic() + 30
        while rec.status().spilled_frames < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec.status().spilled_frames >= 10
        gate.set()
        ok, msg = rec.stop(True, T0 + 39 * 50 * MS)
        assert ok and "20 frames" in msg, msg
    finally:
        gate.set()
        rec.close(False, 0)
    (ep,) = _episodes(tmp_path / "ds")
    np.testing.assert_array_equal(ep["observation.state"][:, 0], np.arange(0, 40, 2))
