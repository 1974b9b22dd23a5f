"""Tools never destroy data they did not make: every command that writes an output folder (or file) refuses one
holding someone else's data unless --force, and replaces only its own earlier output.

The case from the issue: ``wallx-ros-make-test-checkpoint DIR`` deleted a folder with a user's notes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wallx_ros.cli.fastdds_profile import main as profile_main
from wallx_ros.cli.interfaces_package import main as interfaces_main
from wallx_ros.cli.make_test_checkpoint import main as make_checkpoint
from wallx_ros.cli.plot_run import main as plot_run
from wallx_ros.core.output_folders import MARKER, OutputFolderError, claim_file, claim_folder, replace_folder
from wallx_ros.core.robot_mapping import RobotMapping


def _users_folder(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "sub" / "data.bin").write_bytes(b"\x00" * 10)
    return path


def _intact(path: Path) -> bool:
    return (path / "notes.txt").read_text() == "my notes" and (path / "sub" / "data.bin").stat().st_size == 10


def test_make_test_checkpoint_refuses_a_users_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _users_folder(tmp_path / "mine")
    assert make_checkpoint([str(folder)]) == 1
    err = capsys.readouterr().err
    assert "did not create it" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert _intact(folder) and not (folder / MARKER).exists()


def test_make_test_checkpoint_replaces_its_own_output_and_forced_folders(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    assert make_checkpoint([str(out), "--chunk-size", "8"]) == 0
    (out / "stale_extra_file").write_text("written by an earlier run of the tool")
    assert make_checkpoint([str(out), "--chunk-size", "8"]) == 0  # its own output: rebuilt
    assert not (out / "stale_extra_file").exists() and (out / "model.safetensors").is_file()
    assert (out / MARKER).read_text().strip() == "wallx-ros-make-test-checkpoint"
    forced = _users_folder(tmp_path / "forced")
    from wallx_ros.policy.checkpoints.tiny_checkpoint import TinyCheckpointSpec, build_tiny_checkpoint

    with pytest.raises(OutputFolderError):
        build_tiny_checkpoint(forced, TinyCheckpointSpec(chunk_size=8))
    assert _intact(forced)
    build_tiny_checkpoint(forced, TinyCheckpointSpec(chunk_size=8), force=True)
    assert not (forced / "notes.txt").exists() and (forced / "config.json").is_file()


def test_a_checkpoint_written_before_markers_counts_as_the_tools(tmp_path: Path) -> None:
    from wallx_ros.policy.checkpoints.tiny_checkpoint import _NOTE, CHECKPOINT_INFO_FILENAME, _earlier_tiny_checkpoint

    old = tmp_path / "old"
    old.mkdir()
    (old / CHECKPOINT_INFO_FILENAME).write_text(json.dumps({"random_weights": True, "note": _NOTE}))
    assert _earlier_tiny_checkpoint(old)
    (old / CHECKPOINT_INFO_FILENAME).write_text(json.dumps({"note": "a real policy"}))
    assert not _earlier_tiny_checkpoint(old)


def test_claim_and_replace_rules(tmp_path: Path) -> None:
    new = claim_folder(tmp_path / "a" / "b", "tool")  # created with parents, marked
    assert (new / MARKER).read_text() == "tool\n"
    (new / "result.txt").write_text("1")
    assert claim_folder(new, "tool") == new  # its own: fine
    with pytest.raises(OutputFolderError, match="other did not create it"):
        claim_folder(new, "other")
    users = _users_folder(tmp_path / "users")
    with pytest.raises(OutputFolderError, match="pass --force to write into it"):
        claim_folder(users, "tool")
    assert _intact(users)
    claim_folder(users, "tool", force=True)
    assert _intact(users)  # --force writes into it: nothing deleted
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim_folder(empty, "tool") == empty
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="not a folder"):
        claim_folder(tmp_path / "file", "tool", force=True)
    again = _users_folder(tmp_path / "again")
    with pytest.raises(OutputFolderError, match="delete everything in it"):
        replace_folder(again, "tool")
    assert _intact(again)
    replace_folder(new, "tool")
    assert [p.name for p in new.iterdir()] == [MARKER]
    assert replace_folder(again, "tool", ours=lambda p: (p / "notes.txt").exists()) == again
    assert not (again / "notes.txt").exists()
    with pytest.raises(OutputFolderError, match="exists"):
        claim_file(tmp_path / "file")
    assert claim_file(tmp_path / "file", force=True) == tmp_path / "file"


def test_cli_output_folders_refuse_users_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = _users_folder(tmp_path / "users")
    assert plot_run([str(tmp_path / "missing.jsonl"), "-o", str(users)]) == 1
    assert "did not create it" in capsys.readouterr().err  # refused before it even looks at the run
    assert interfaces_main([str(users)]) == 1
    assert "did not create it" in capsys.readouterr().err
    assert _intact(users) and not (users / "package.xml").exists()
    profile = tmp_path / "profile.xml"
    profile.write_text("<my own profile/>")
    assert profile_main(["--self-ip", "192.168.1.20", "-o", str(profile)]) == 1
    assert profile.read_text() == "<my own profile/>"
    assert profile_main(["--self-ip", "192.168.1.20", "-o", str(profile), "--force"]) == 0
    assert "192.168.1.20" in profile.read_text()


def test_packaging_never_replaces_a_users_backbone_folder(tmp_path: Path) -> None:
    from wallx_ros.policy.checkpoints.checkpoint_packaging import package_checkpoint
    from wallx_ros.policy.checkpoints.tiny_checkpoint import BACKBONE_SUBDIR

    policy = tmp_path / "policy"
    policy.mkdir()
    backbone = tmp_path / "backbone"
    backbone.mkdir()
    (backbone / "config.json").write_text("{}")
    (policy / "config.json").write_text(json.dumps({
        "type": "wall_x", "pretrained_name_or_path": str(backbone),
        "output_features": {"action": {"shape": [2]}}, "input_features": {"observation.state": {"shape": [2]}}}))
    (policy / "model.safetensors").write_bytes(b"")
    users = _users_folder(policy / BACKBONE_SUBDIR)
    mapping = RobotMapping(state_names=("a", "b"), action_names=("a", "b"), cameras=("face_view",), fps=30.0)
    with pytest.raises(OutputFolderError):
        package_checkpoint(policy, mapping)
    assert _intact(users)
    dest = package_checkpoint(policy, mapping, force=True)
    assert (dest / "config.json").is_file() and not (dest / "notes.txt").exists()
    assert package_checkpoint(policy, mapping) == dest  # its own output now: packaged again
