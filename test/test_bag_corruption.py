"""``wallx-ros-bag2dataset`` on damaged rosbags: a clear error, never a partial dataset reported as success.

Every case runs the real CLI (``bag2dataset.main``) on a bag written with rosbags' own writer and then damaged
(truncated at several points, bytes flipped, garbage, empty, metadata.yaml missing or garbage, a damaged
sqlite3 database, the second of two bags damaged). Outcomes that are allowed:

* exit code 1, an ``error:`` line naming the problem, and either no dataset at all or one marked
  INCOMPLETE (``meta/WALLX_ROS_INCOMPLETE``) holding only fully saved episodes; or
* exit code 0 only when the damage is invisible to any reader (e.g. flipped pixel bytes: CDR has no
  checksum): then the dataset is complete, loads, and has every frame.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bag_fixtures import make_recording, params_yaml
from fuzz_ledger import count, event

from wallx_ros.cli import bag2dataset
from wallx_ros.dataset.conversion_ledger import INCOMPLETE_MARKER
from wallx_ros.dataset.dataset_reader import DatasetReader


def _damage(bag: Path, case: str, rng: np.random.Generator) -> None:
    data_file = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    data = data_file.read_bytes()
    if case.startswith("truncated"):
        fraction = int(case.split("_")[1]) / 100
        data_file.write_bytes(data[: int(len(data) * fraction)])
    elif case == "empty file":
        data_file.write_bytes(b"")
    elif case == "garbage":
        data_file.write_bytes(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif case == "bytes flipped":
        raw = bytearray(data)
        for i in rng.integers(64, len(raw) - 64, 40):
            raw[int(i)] ^= 0xFF
        data_file.write_bytes(bytes(raw))
    elif case == "metadata.yaml missing":
        (bag / "metadata.yaml").unlink()
    elif case == "metadata.yaml garbage":
        (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [this is: {not valid")
    elif case == "data file missing":
        data_file.unlink()
    else:
        raise AssertionError(case)


CASES = [("mcap", c) for c in ("truncated_10", "truncated_50", "truncated_95", "truncated_99", "empty file",
                              "garbage", "bytes flipped", "metadata.yaml missing", "metadata.yaml garbage",
                              "data file missing")] + \
        [("sqlite3", c) for c in ("truncated_50", "garbage", "bytes flipped")]


def _check(tmp_path: Path, bags: list[Path], expected_frames: int, label: str,
           capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    rc = bag2dataset.main([*map(str, bags), "--root", str(root), "--params-file",
                           str(params_yaml(tmp_path / "p.yaml")), "--no-progress", "-q"])
    out = capsys.readouterr()
    text = out.out + out.err
    marked = (root / "meta" / INCOMPLETE_MARKER).exists()
    if rc == 0:
        assert not marked, f"{label}: exit 0 but the dataset is marked incomplete"
        reader = DatasetReader(root)
        frames = sum(1 for _ in reader.frames())
        assert frames == expected_frames, f"{label}: exit 0 with {frames} of {expected_frames} frames: a partial " \
                                          "dataset reported as success"
        dataset = "complete, all frames load"
    else:
        assert rc == 1 and "error:" in text, f"{label}: rc {rc}\n{text[-2000:]}"
        assert not (root / "meta").exists() or marked, f"{label}: failed but the dataset is not marked incomplete"
        if marked:
            DatasetReader(root)  # what was saved still loads
        dataset = "marked INCOMPLETE" if marked else "none written"
    message = next((ln for ln in text.splitlines() if ln.startswith("error:")),
                   f"converted: {expected_frames} frames, dataset complete")
    count("corrupt rosbag -> bag2dataset", "accepted" if rc == 0 else "refused")
    event("corrupt_bag", case=label, rc=rc, dataset=dataset, message=message)


@pytest.mark.parametrize(("storage", "case"), CASES)
def test_damaged_bag(tmp_path: Path, storage: str, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    rec = make_recording(tmp_path / "bag", storage=storage, segments=(6,))
    _damage(rec.path, case, np.random.default_rng(7))
    _check(tmp_path, [rec.path], 6, f"{storage}: {case}", capsys)


def test_second_of_two_bags_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The first bag's episode is saved; the run still fails and the dataset says it is incomplete."""
    good = make_recording(tmp_path / "good", segments=(5,))
    bad = make_recording(tmp_path / "bad", segments=(5,), start_s=200.0)
    _damage(bad.path, "truncated_50", np.random.default_rng(1))
    _check(tmp_path, [good.path, bad.path], 10, "mcap: second of two bags truncated", capsys)
    shutil.rmtree(tmp_path / "ds", ignore_errors=True)
