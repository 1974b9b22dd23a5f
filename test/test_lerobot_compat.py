"""wallx_ros.lerobot on the installed LeRobot line (0.4.4 on kilted, 0.6.1 on jazzy): the version differences it owns.

The fast-mode generation fix is checked against the real thing: the tiny fast model's cached ``generate``
(what LeRobot's fast mode runs) must give the same logits, step by step, as full uncached forwards over the
growing sequence; a deliberately wrong cache position must not (so the comparison can fail).
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wallx_ros.core.types import Observation
from wallx_ros.lerobot import datasets as lerobot_datasets
from wallx_ros.lerobot import versions, wallx_model
from wallx_ros.lerobot.errors import BackboneWeightsMissingError
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import DEFAULT_CAMERAS
from wallx_ros.policy.errors import CheckpointError

STACK_LINES = {"kilted": "0.4", "jazzy": "0.6"}
GENERATE_INPUTS = ("input_ids", "attention_mask", "pixel_values", "moe_token_types", "image_grid_thw", "dof_mask",
                   "agent_pos_mask", "proprioception")


def _observation() -> Observation:
    rng = np.random.default_rng(5)
    return Observation(images={c: rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for c in DEFAULT_CAMERAS},
                       state=rng.normal(size=14).astype(np.float32), instruction="stack the cups", stamp_ns=1)


def test_installed_line_is_the_stacks_line() -> None:
    line = versions.installed_line()
    assert line in ("0.4", "0.6")
    assert versions.lerobot_version()[:2] == {"0.4": (0, 4), "0.6": (0, 6)}[line]
    stack = os.environ.get("WALLX_STACK")
    if stack in STACK_LINES:
        assert line == STACK_LINES[stack], f"stack {stack} should run LeRobot {STACK_LINES[stack]}"


def test_version_guards_agree_with_the_installed_line() -> None:
    line = versions.installed_line()
    assert versions.fast_mode_needs_qwen_token_ids() == (line == "0.4")
    assert versions.backbone_weights_required() == (line == "0.6")
    assert lerobot_datasets.default_video_backend() == ("torchcodec" if line == "0.4" else "pyav")
    # transformers 5.4+ with LeRobot 0.6 is exactly the pair whose fast mode needs the fix
    needed = line == "0.6" and versions.transformers_version() >= (5, 4, 0)
    assert versions.fast_generation_patch_needed() == needed
    assert wallx_model.patch_fast_generation() == needed
    method = wallx_model.api().Qwen2_5_VLMoEForAction.prepare_inputs_for_generation
    assert getattr(method, "_wallx_ros_cache_position", False) == needed


def test_backbone_weights_rule(tiny_checkpoint: Path, tmp_path: Path) -> None:
    backbone = tiny_checkpoint / "wallx_backbone"
    versions.check_backbone_dir(backbone)  # the tiny builder writes the (empty) file on both lines
    bare = tmp_path / "backbone"
    bare.mkdir()
    (bare / "config.json").write_text((backbone / "config.json").read_text())
    if not versions.backbone_weights_required():
        versions.check_backbone_dir(bare)
        return
    with pytest.raises(BackboneWeightsMissingError, match=r"wallx-ros-convert-checkpoint SRC DST --to 0\.6"):
        versions.check_backbone_dir(bare)
    # the backend reports the same rule as a checkpoint problem, before LeRobot raises its own OSError
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    (ckpt / "wallx_backbone" / versions.BACKBONE_WEIGHTS_FILENAME).unlink()
    with pytest.raises(CheckpointError, match=r"wallx-ros-convert-checkpoint SRC DST --to 0\.6"):
        load_backend(BackendConfig(checkpoint_dir=ckpt, device="cpu", allow_random_weights=True))


def test_qwen_processor_round_trips(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """The processor made for this transformers version saves and loads back through AutoProcessor."""
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(str(tiny_checkpoint / "wallx_backbone"))
    again = wallx_model.make_qwen_processor({"min_pixels": 3136, "max_pixels": 50176}, proc.tokenizer)
    again.save_pretrained(str(tmp_path))
    loaded = AutoProcessor.from_pretrained(str(tmp_path))
    assert type(loaded).__name__ == "Qwen2_5_VLProcessor"
    image = loaded.image_processor
    assert (getattr(image, "max_pixels", None) or image.size["longest_edge"]) == 50176
    names = {p.name for p in tmp_path.iterdir()}
    transformers5 = versions.transformers_version() >= (5, 0, 0)
    expected = "processor_config.json" if transformers5 else "preprocessor_config.json"
    assert expected in names, names


def test_preprocess_inputs_gives_model_inputs(tiny_checkpoint: Path) -> None:
    import torch

    policy = wallx_model.api().WallXPolicy.from_pretrained(str(tiny_checkpoint))
    pre, _ = wallx_model.load_policy_processors(tiny_checkpoint, "cpu")
    obs = _observation()
    batch: dict[str, Any] = {"observation.state": torch.from_numpy(obs.state), "task": obs.instruction}
    for cam in DEFAULT_CAMERAS:
        batch[f"observation.images.{cam}"] = torch.from_numpy(obs.images[cam]).permute(2, 0, 1).float() / 255
    inputs = wallx_model.preprocess_inputs(policy, pre(batch))
    ids = inputs["input_ids"]
    assert ids.ndim == 2 and ids.shape[0] == 1
    image_token = policy.model.config.image_token_id
    assert int((ids == image_token).sum()) > 0 and inputs["pixel_values"].shape[0] > 0


def test_dataset_create_write_and_read_back_video(tmp_path: Path) -> None:
    """create_dataset (vcodec vs rgb_encoder) -> frames -> finalize -> load_dataset with this line's video backend."""
    h, w = 48, 64
    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
        "action": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
        "observation.images.face_view": {"dtype": "video", "shape": (h, w, 3),
                                         "names": ["height", "width", "channels"]},
    }
    root = tmp_path / "ds"
    ds = lerobot_datasets.create_dataset(repo_id="local/compat_check", root=root, fps=10, features=features,
                                       robot_type="test_arm", use_videos=True, vcodec="libsvtav1")
    for t in range(12):
        img = np.zeros((h, w, 3), dtype=np.uint8)
        img[:, : w // 2, 0] = 20 * t  # red ramp on the left half
        ds.add_frame({"observation.state": np.array([t, -t], np.float32), "action": np.array([t, 1], np.float32),
                      "observation.images.face_view": img, "task": "ramp"})
    lerobot_datasets.save_episode(ds)
    ds.finalize()
    back = lerobot_datasets.load_dataset("local/compat_check", root)  # default_video_backend()
    assert len(back) == 12 and back.num_episodes == 1
    item = back[7]
    np.testing.assert_allclose(item["observation.state"].numpy(), [7, -7])
    frame = item["observation.images.face_view"].numpy()  # CHW float in [0, 1]
    assert frame.shape == (3, h, w)
    left_red = frame[0, :, : w // 4].mean() * 255
    assert abs(left_red - 140) < 12, left_red  # lossy codec: close to the written value
    assert frame[0, :, -w // 4 :].mean() * 255 < 12


# -- fast mode: cached generation == uncached forwards ---------------------------------------------------
class _GenerateCalled(Exception):
    """Raised by the spy once LeRobot's fast mode has handed its generate() inputs over."""


@pytest.fixture(scope="module")
def fast_generation(tiny_fast_checkpoint: Path) -> tuple[Any, dict[str, Any]]:
    """The tiny fast model as the backend loads it, and the exact inputs LeRobot's fast mode passes to generate()."""
    backend = load_backend(BackendConfig(checkpoint_dir=tiny_fast_checkpoint, allow_random_weights=True, seed=0,
                                         fast_action_tokens_only=True))
    model = backend._policy.model
    captured: dict[str, Any] = {}

    def spy(**kwargs: Any) -> Any:
        captured.update(kwargs)
        raise _GenerateCalled

    model.generate = spy
    with pytest.raises(_GenerateCalled):
        backend.predict_chunk(_observation())
    del model.generate
    assert captured["use_cache"] is True  # LeRobot's fast mode generates with the KV cache
    return model, {k: captured[k] for k in GENERATE_INPUTS}


def _cached_logits(model: Any, inputs: dict[str, Any], steps: int) -> tuple[Any, Any]:
    import torch

    out = model.generate(**inputs, max_new_tokens=steps, min_new_tokens=steps, do_sample=False, use_cache=True,
                         output_logits=True, return_dict_in_generate=True,
                         eos_token_id=[model.processor.tokenizer.eos_token_id],
                         pad_token_id=model.processor.tokenizer.pad_token_id)
    return out.sequences, torch.stack(out.logits, 1)[0].float()


def _uncached_logits(model: Any, inputs: dict[str, Any], sequence: Any, steps: int) -> Any:
    import torch

    prompt = inputs["input_ids"].shape[1]
    rows = []
    with torch.no_grad():
        for i in range(steps):
            ids = sequence[:, : prompt + i]
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=inputs["pixel_values"],
                        image_grid_thw=inputs["image_grid_thw"], moe_token_types=torch.zeros_like(ids),
                        proprioception=inputs["proprioception"], dof_mask=inputs["dof_mask"],
                        agent_pos_mask=inputs["agent_pos_mask"], use_cache=False)
            rows.append(out.logits[0, -1].float())
    return torch.stack(rows)


def test_cached_generation_equals_uncached_forward(fast_generation: tuple[Any, dict[str, Any]]) -> None:
    """On 0.6 this runs through patch_fast_generation (stock 0.6.1 + transformers 5.5 cannot generate at all)."""
    model, inputs = fast_generation
    # 0.4's tiny fast model has Qwen's 151k vocabulary (hard-coded ids), which makes uncached steps slow on CPU
    steps = 3 if versions.installed_line() == "0.4" else 6
    sequence, cached = _cached_logits(model, inputs, steps)
    uncached = _uncached_logits(model, inputs, sequence, steps)
    assert sequence.shape[1] == inputs["input_ids"].shape[1] + steps
    diff = (cached - uncached).abs().amax(dim=1)
    assert float(diff.max()) <= 1e-3, f"per-step max |cached - uncached| logits: {diff.tolist()}"
    assert int(sequence[0, -steps:].min()) >= 0

    # the comparison detects a wrong cache position: shift decode positions by a few tokens
    cls = type(model)
    current = cls.prepare_inputs_for_generation
    stock = getattr(current, "__wrapped__", current)

    @functools.wraps(stock)
    def shifted(self: Any, input_ids: Any, past_key_values: Any = None, *args: Any, cache_position: Any = None,
                **kwargs: Any) -> Any:
        import torch

        cached_len = past_key_values.get_seq_length() if past_key_values is not None else 0
        length = input_ids.shape[1]
        end = length if length > cached_len else cached_len + length
        position = torch.arange(cached_len, end)
        return stock(self, input_ids, past_key_values, *args, cache_position=position + (5 if cached_len else 0),
                     **kwargs)

    cls.prepare_inputs_for_generation = shifted
    try:
        _, wrong = _cached_logits(model, inputs, steps)
    finally:
        cls.prepare_inputs_for_generation = current
    wrong_diff = (wrong - uncached).abs().amax(dim=1)
    assert float(wrong_diff[1:].min()) > 1e-3, f"a wrong cache position went unnoticed: {wrong_diff.tolist()}"


def test_stock_fast_generation_fails_where_the_fix_is_applied(fast_generation: tuple[Any, dict[str, Any]]) -> None:
    if not versions.fast_generation_patch_needed():
        installed = f"LeRobot {versions.lerobot_version()} + transformers {versions.transformers_version()}"
        pytest.skip(f"{installed} passes cache_position itself: no fix applied, nothing to compare against")
    model, inputs = fast_generation
    cls = type(model)
    current = cls.prepare_inputs_for_generation
    cls.prepare_inputs_for_generation = current.__wrapped__  # stock LeRobot
    try:
        with pytest.raises(TypeError, match="NoneType"):
            _cached_logits(model, inputs, 2)
    finally:
        cls.prepare_inputs_for_generation = current
