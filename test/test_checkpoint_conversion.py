"""wallx-ros-convert-checkpoint: LeRobot 0.4 <-> 0.6 policy folders, checked by loading them with the real LeRobot.

The cross-version tests run the OTHER stack's venv (kilted: .venv, LeRobot 0.4.4; jazzy: .venv-jazzy, LeRobot
0.6.1) in a subprocess through test/xver_predict.py, and skip with the reason when that venv is absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ros_harness import REPO_ROOT, subprocess_env
from xver_predict import observation

from wallx_ros.cli import convert_checkpoint as cli
from wallx_ros.lerobot import versions
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.checkpoint_convert import convert_checkpoint, detect_layout
from wallx_ros.policy.errors import CheckpointConversionError

VENVS = {"0.4": REPO_ROOT / ".venv", "0.6": REPO_ROOT / ".venv-jazzy"}
STACK_OF = {"0.4": "kilted", "0.6": "jazzy"}
# bf16 WallX on two torch/transformers builds: the reference saw 6.5e-4 on unnormalised actions of magnitude ~6
CROSS_VERSION_ATOL = 3e-3

THIS = versions.installed_line()
OTHER = "0.6" if THIS == "0.4" else "0.4"


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _predict_here(checkpoint: Path) -> np.ndarray:
    backend = load_backend(BackendConfig(checkpoint_dir=checkpoint, allow_random_weights=True, seed=0))
    return backend.predict_chunk(observation()).actions


def _other_python() -> Path:
    python = VENVS[OTHER] / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"the {STACK_OF[OTHER]} venv ({VENVS[OTHER]}) is absent: build it with "
                    f"`bash scripts/setup.sh --stack {STACK_OF[OTHER]}` to test LeRobot {THIS} <-> {OTHER}")
    return python


def _run_other(args: list[str], tmp_path: Path) -> np.ndarray:
    """Run test/xver_predict.py in the other stack's venv; return the actions it predicted."""
    venv = VENVS[OTHER]
    env = subprocess_env({"VIRTUAL_ENV": str(venv), "AMENT_PREFIX_PATH": str(venv), "WALLX_STACK": STACK_OF[OTHER]})
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    # this venv's ROS libraries; the other venv's ROS-wheels bootstrapper re-executes python with its own,
    # unless the guard variable says that already happened
    env.pop("LD_LIBRARY_PATH", None)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    out = tmp_path / "other.npz"
    run = subprocess.run([str(_other_python()), str(REPO_ROOT / "test" / "xver_predict.py"), *args, str(out)],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = np.load(out)
    assert str(result["lerobot"]).startswith(OTHER), str(result["lerobot"])
    return np.asarray(result["actions"])


# -- layout detection and refusals (this venv only) -----------------------------------------------------
def test_tiny_checkpoint_loads_on_this_line_as_is(tiny_checkpoint: Path) -> None:
    layout = detect_layout(tiny_checkpoint)
    assert THIS in layout.loads_on and not layout.blockers[THIS]
    assert layout.blockers[OTHER], "a checkpoint saved by one line needs edits for the other"


def test_conversion_never_modifies_the_source(tiny_checkpoint: Path, tmp_path: Path) -> None:
    before = _tree_digest(tiny_checkpoint)
    report = convert_checkpoint(tiny_checkpoint, tmp_path / "other", OTHER)
    assert _tree_digest(tiny_checkpoint) == before
    assert report.source_line == THIS and report.target_line == OTHER and report.edits
    converted = detect_layout(tmp_path / "other")
    assert OTHER in converted.loads_on, converted.blockers
    cfg = json.loads((tmp_path / "other" / "config.json").read_text())
    assert cfg["pretrained_name_or_path"] == str(tmp_path / "other" / "wallx_backbone")
    # weights are copied byte for byte
    assert (_tree_digest(tmp_path / "other")["model.safetensors"] == before["model.safetensors"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".other")], "temporary folder left behind"


def test_round_trip_back_to_this_line_predicts_identically(tiny_checkpoint: Path, tmp_path: Path) -> None:
    convert_checkpoint(tiny_checkpoint, tmp_path / "other", OTHER)
    convert_checkpoint(tmp_path / "other", tmp_path / "back", THIS)
    np.testing.assert_array_equal(_predict_here(tmp_path / "back"), _predict_here(tiny_checkpoint))


def test_backend_refuses_the_other_lines_layout_with_the_fix(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Unconverted, a checkpoint of the other line fails late and obscurely (0.4 on 0.6: KeyError 'dense' at the
    first forward; 0.6 on 0.4: a draccus DecodingError): the backend says what to run instead. (A converted folder
    loads on both lines, so the other line's own marks are written into a converted copy here.)"""
    from wallx_ros.policy.errors import CheckpointError

    other = tmp_path / "other"
    convert_checkpoint(tiny_checkpoint, other, OTHER)
    assert detect_layout(other).loads_on == ("0.4", "0.6")
    if THIS == "0.6":  # what LeRobot 0.4.4 writes into the backbone config
        path, key, value = other / "wallx_backbone" / "config.json", "layer_types", ["dense", "dense"]
    else:  # what LeRobot 0.6.1 writes into the policy config
        path, key, value = other / "config.json", "vision_attn_implementation", "auto"
    cfg = json.loads(path.read_text())
    cfg[key] = value
    path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=rf"wallx-ros-convert-checkpoint .* --to {THIS}"):
        load_backend(BackendConfig(checkpoint_dir=other, allow_random_weights=True))
    convert_checkpoint(other, tmp_path / "fixed", THIS)
    load_backend(BackendConfig(checkpoint_dir=tmp_path / "fixed", allow_random_weights=True))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_unknown_layouts_are_refused_with_clear_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointConversionError, match="not a folder"):
        convert_checkpoint(tmp_path / "missing", tmp_path / "x", OTHER)
    with pytest.raises(CheckpointConversionError, match="must be one of"):
        convert_checkpoint(tiny_checkpoint, tmp_path / "x", "0.5")

    bare = _copy(tiny_checkpoint / "wallx_backbone", tmp_path / "bare")
    with pytest.raises(CheckpointConversionError, match="not a LeRobot 'wall_x' policy"):
        convert_checkpoint(bare, tmp_path / "x", OTHER)

    newer = _copy(tiny_checkpoint, tmp_path / "newer")
    cfg = json.loads((newer / "config.json").read_text())
    cfg["some_future_field"] = 1
    (newer / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointConversionError, match=r"some_future_field.*unknown layout"):
        convert_checkpoint(newer, tmp_path / "x", OTHER)

    # half-converted: 0.6 policy fields beside a 0.4-only backbone (or the other way round)
    mixed = _copy(tiny_checkpoint, tmp_path / "mixed")
    cfg = json.loads((mixed / "config.json").read_text())
    bcfg = json.loads((mixed / "wallx_backbone" / "config.json").read_text())
    cfg["vision_attn_implementation"] = "auto"
    bcfg["layer_types"] = ["dense", "dense"]
    (mixed / "config.json").write_text(json.dumps(cfg))
    (mixed / "wallx_backbone" / "config.json").write_text(json.dumps(bcfg))
    with pytest.raises(CheckpointConversionError, match="neither line can load it"):
        convert_checkpoint(mixed, tmp_path / "x", OTHER)

    no_weights = _copy(tiny_checkpoint, tmp_path / "no_weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(CheckpointConversionError, match=r"model\.safetensors not found"):
        convert_checkpoint(no_weights, tmp_path / "x", OTHER)
    assert not (tmp_path / "x").exists()


def test_destination_rules(tiny_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointConversionError, match="not an empty folder"):
        convert_checkpoint(tiny_checkpoint, tmp_path / "taken", OTHER)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    src = _copy(tiny_checkpoint, tmp_path / "src")
    with pytest.raises(CheckpointConversionError, match="inside the source"):
        convert_checkpoint(src, src / "converted", OTHER)
    (tmp_path / "empty").mkdir()
    convert_checkpoint(tiny_checkpoint, tmp_path / "empty", OTHER)  # an empty folder is fine
    assert (tmp_path / "empty" / "model.safetensors").is_file()


def test_cli(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--check", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert f"LeRobot {THIS}: no known incompatibility" in out and f"LeRobot {OTHER}: needs conversion" in out
    assert cli.main([str(tiny_checkpoint), str(tmp_path / "out"), "--to", OTHER]) == 0
    assert f"(LeRobot {OTHER})" in capsys.readouterr().out
    assert cli.main([str(tiny_checkpoint), str(tmp_path / "out"), "--to", OTHER]) == 1
    assert "not an empty folder" in capsys.readouterr().err
    # the installed console script / ROS executable
    exe = Path(sys.executable).parent.parent / "lib" / "wallx_ros" / "wallx-ros-convert-checkpoint"
    if not exe.is_file():
        exe = Path(shutil.which("wallx-ros-convert-checkpoint") or "")
    if not exe.is_file():
        pytest.skip("wallx-ros-convert-checkpoint is not installed in this venv (run scripts/setup.sh)")
    # as `ros2 run` starts it: trailing ROS arguments are ignored
    run = subprocess.run([str(exe), "--check", str(tmp_path / "out"), "--ros-args", "-r", "__node:=x"],
                         capture_output=True, text=True, env=subprocess_env())
    assert run.returncode == 0 and f"LeRobot {OTHER}: no known incompatibility" in run.stdout, run.stderr


# -- across the two venvs ---------------------------------------------------------------------------------
def test_checkpoint_from_this_line_predicts_the_same_on_the_other(tiny_checkpoint: Path, tmp_path: Path) -> None:
    _other_python()
    convert_checkpoint(tiny_checkpoint, tmp_path / "converted", OTHER)
    there = _run_other([str(tmp_path / "converted")], tmp_path)
    here = _predict_here(tiny_checkpoint)
    assert there.shape == here.shape == (32, 14)
    np.testing.assert_allclose(there, here, rtol=0, atol=CROSS_VERSION_ATOL)
    assert np.abs(here).max() > 0.5  # non-trivial actions (unnormalised with the checkpoint's stats)


def test_checkpoint_from_the_other_line_predicts_the_same_here(tmp_path: Path) -> None:
    _other_python()
    built_there = tmp_path / f"tiny_{OTHER}"
    there = _run_other([str(built_there), "--build", "diffusion"], tmp_path)
    assert OTHER in detect_layout(built_there).loads_on
    converted = tmp_path / "converted"
    report = convert_checkpoint(built_there, converted, THIS)
    assert report.source_line == OTHER and report.edits
    np.testing.assert_allclose(_predict_here(converted), there, rtol=0, atol=CROSS_VERSION_ATOL)
