"""dataset.video_spool: capture spools frames to disk and never waits for the encoder processes.

The encoder of one camera is frozen (SIGSTOP) while frames keep coming: every frame is accepted at once and
waits on disk; once the encoder runs again the episode is encoded completely, with exact image statistics.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from dataset_child import FRAMES, H, W, frame_values, spec_for

from wallx_ros.dataset.errors import DatasetWriteError
from wallx_ros.dataset.video_encode_worker import ImageStats
from wallx_ros.dataset.video_spool import SpoolVideoEncoder, VideoEncoding
from wallx_ros.dataset.writer import DatasetWriter
from wallx_ros.lerobot import datasets as lerobot_datasets

QUANTILES = (("q01", 0.01), ("q10", 0.10), ("q50", 0.50), ("q90", 0.90), ("q99", 0.99))


def _encoding(**kw: object) -> VideoEncoding:
    values: dict[str, object] = {"vcodec": "h264", "pix_fmt": "yuv420p", "options": {"g": "2", "crf": "30"},
                                 "quantiles": QUANTILES, **kw}
    return VideoEncoding(**values)  # type: ignore[arg-type]


def test_image_stats_are_exact_per_channel() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 30, 3), dtype=np.uint8) for _ in range(5)]
    stats = ImageStats(list(QUANTILES))
    for f in frames:
        stats.update(f)
    result = stats.result()
    assert result is not None
    pixels = np.concatenate([f.reshape(-1, 3) for f in frames]).astype(np.float64)
    np.testing.assert_allclose(result["mean"], pixels.mean(axis=0))
    np.testing.assert_allclose(result["std"], pixels.std(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(result["min"], pixels.min(axis=0))
    np.testing.assert_array_equal(result["max"], pixels.max(axis=0))
    assert result["count"] == [float(len(pixels))]
    for key, q in QUANTILES:  # the smallest value with at least q of the pixels at or below it
        want = [np.sort(pixels[:, c])[int(np.ceil(q * len(pixels))) - 1] for c in range(3)]
        np.testing.assert_array_equal(result[key], want)


def test_capture_never_waits_for_a_stalled_encoder(tmp_path: Path) -> None:
    enc = SpoolVideoEncoder(tmp_path / "spool", 10, _encoding())
    enc.start_episode(["observation.images.cam"])
    images = [np.full((96, 128, 3), (7 * i) % 256, np.uint8) for i in range(120)]
    enc.feed_frame("observation.images.cam", images[0])
    worker = enc._cameras["observation.images.cam"]._proc
    assert worker is not None
    os.kill(worker.pid, signal.SIGSTOP)  # the encoder gets no CPU at all
    try:
        t0 = time.monotonic()
        for img in images[1:]:
            enc.feed_frame("observation.images.cam", img)
        fed_s = time.monotonic() - t0
        assert enc.backlog() >= 119 - 30  # everything but at most the chunk it read before it froze is waiting
        chunks = list((tmp_path / "spool").rglob("chunk_*.raw"))
        assert sum(c.stat().st_size for c in chunks) >= (119 - 30) * 96 * 128 * 3
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    (path, stats), = enc.finish_episode().values()
    assert fed_s < 30, fed_s  # generous: 119 frames written to disk, not 119 frames encoded by a frozen encoder
    assert path.is_file() and stats is not None and int(stats["count"][0]) == 120 * 96 * 128
    assert not list((tmp_path / "spool").rglob("chunk_*.raw"))  # encoded chunks are deleted
    np.testing.assert_allclose(stats["mean"], np.mean([img.mean() for img in images]), rtol=1e-9)
    import av

    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 120
    assert abs(float(decoded[60].mean()) - float(images[60].mean())) < 4


def test_a_failing_encoder_is_a_write_error_with_its_reason(tmp_path: Path) -> None:
    """The encoder process fails at its start (unknown codec). Whether that is seen at a later frame (the process
    is gone: "stopped") or when the episode is finished ("failed") depends on how fast it dies (CI under load: at
    the second frame); either way it is a write error naming the camera and the encoder's own reason, and once
    the episode is cancelled nothing of it is left in the spool."""
    enc = SpoolVideoEncoder(tmp_path / "spool", 10, _encoding(vcodec="no_such_codec"))
    enc.start_episode(["observation.images.cam"])
    reason = r"(encoder of observation\.images\.cam stopped|encoding observation\.images\.cam failed): .*no_such_codec"
    with pytest.raises(DatasetWriteError, match=reason):
        for i in range(3):
            enc.feed_frame("observation.images.cam", np.full((16, 16, 3), i, np.uint8))
        enc.finish_episode()
    enc.cancel_episode()
    assert not list((tmp_path / "spool").rglob("*.raw"))
    assert not enc.episode_active


def test_an_encoder_that_died_fails_the_next_frame(tmp_path: Path) -> None:
    """The other order, made certain: the encoder is already gone when the next frame comes."""
    enc = SpoolVideoEncoder(tmp_path / "spool", 10, _encoding(vcodec="no_such_codec"))
    enc.start_episode(["observation.images.cam"])
    enc.feed_frame("observation.images.cam", np.zeros((16, 16, 3), np.uint8))  # starts the encoder process
    proc = enc._cameras["observation.images.cam"]._proc  # the encoder process (no public handle)
    assert proc is not None
    proc.wait(120)
    with pytest.raises(DatasetWriteError, match=r"encoder of observation\.images\.cam stopped: .*no_such_codec"):
        enc.feed_frame("observation.images.cam", np.zeros((16, 16, 3), np.uint8))
    enc.cancel_episode()
    assert not list((tmp_path / "spool").rglob("*.raw"))


def test_the_dataset_stats_of_a_spooled_camera_match_its_frames(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    images = []
    with DatasetWriter(spec_for(root, streaming_encoding=True)) as writer:
        writer.start_episode()
        for i in range(FRAMES):
            img, state, action = frame_values(0, i)
            images.append(img)
            writer.add_frame({"face_view": img}, state, action, "task 0")
        report = writer.save_episode()
    assert report.encode_tail_s >= 0
    stats = json.loads((root / "meta" / "stats.json").read_text())["observation.images.face_view"]
    pixels = np.stack(images).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(np.ravel(stats["mean"]), pixels.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(np.ravel(stats["max"]), pixels.max(axis=0), atol=1e-6)
    ds = lerobot_datasets.load_dataset("local/crash", root)
    assert ds.num_frames == FRAMES and tuple(ds[0]["observation.images.face_view"].shape) == (3, H, W)
