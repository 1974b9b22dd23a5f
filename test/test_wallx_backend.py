"""The LeRobot WallX backend on the tiny offline checkpoint: real LeRobot code, no mocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wallx_ros.core.types import Observation
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS
from wallx_ros.policy.errors import BackendConfigError, CheckpointError, InferenceError, RandomWeightsError


def observation(seed: int = 0, cams=DEFAULT_CAMERAS, state_dim: int = 14, hw=(120, 160)) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(
        images={c: rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for c in cams},
        state=rng.normal(size=state_dim).astype(np.float32), instruction="put the peg in the socket", stamp_ns=123,
    )


@pytest.fixture(scope="module")
def backend(tiny_checkpoint: Path):
    return load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))


def test_chunk_shape_names_and_timing(backend) -> None:
    chunk = backend.predict_chunk(observation())
    assert chunk.actions.shape == (32, 14)
    assert chunk.names == ALOHA_JOINTS
    assert chunk.stamp_ns == 123 and chunk.dt_s == pytest.approx(1 / 50)
    assert np.all(np.isfinite(chunk.actions))
    assert set(chunk.timings_ms) == {"preprocess", "inference", "postprocess"}
    assert backend.cameras == DEFAULT_CAMERAS and backend.state_names == ALOHA_JOINTS


def test_same_seed_same_actions_and_inputs_matter(backend) -> None:
    a = backend.predict_chunk(observation(0)).actions
    b = backend.predict_chunk(observation(0)).actions
    c = backend.predict_chunk(observation(1)).actions
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_postprocessor_unnormalises_with_the_checkpoint_stats(backend, tiny_checkpoint: Path) -> None:
    """The chunk is in robot units: LeRobot's unnormaliser applied the saved action mean/std."""
    import torch

    from wallx_ros.lerobot import wallx_model

    obs = observation(2)
    chunk = backend.predict_chunk(obs).actions
    # run the same steps by hand with LeRobot's stock API
    lr = wallx_model.api()
    policy = lr.WallXPolicy.from_pretrained(str(tiny_checkpoint))
    pre, _ = wallx_model.load_policy_processors(tiny_checkpoint, "cpu")
    batch = {"observation.state": torch.from_numpy(obs.state), "task": obs.instruction}
    for cam in DEFAULT_CAMERAS:
        batch[f"observation.images.{cam}"] = torch.from_numpy(obs.images[cam]).permute(2, 0, 1).float() / 255
    torch.manual_seed(0)
    normalized = policy.predict_action_chunk(pre(batch))[0].double().numpy()
    from safetensors.torch import load_file

    stats = load_file(str(next(tiny_checkpoint.glob("policy_postprocessor_step_0_*.safetensors"))))
    mean, std = stats["action.mean"].double().numpy(), stats["action.std"].double().numpy()
    np.testing.assert_allclose(chunk, normalized * std + mean, rtol=1e-5, atol=1e-5)
    assert np.abs(chunk - normalized).max() > 0.05  # the stats are not the identity


def test_bad_observations_raise_inference_error(backend) -> None:
    with pytest.raises(InferenceError, match="lacks cameras"):
        backend.predict_chunk(observation(cams=DEFAULT_CAMERAS[:2]))
    with pytest.raises(InferenceError, match="state has shape"):
        backend.predict_chunk(observation(state_dim=13))


def test_warmup_runs_a_prediction(backend) -> None:
    assert backend.warmup() > 0


def test_test_checkpoint_is_refused_without_allow_random_weights(tiny_checkpoint: Path) -> None:
    with pytest.raises(RandomWeightsError, match="random weights"):
        load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint))


def _copy_without_marker(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / "wallx_ros_checkpoint.json").unlink()
    cfg = json.loads((dst / "config.json").read_text())
    cfg["pretrained_name_or_path"] = str(dst / "wallx_backbone")
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_silently_random_weights_are_detected(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """LeRobot keeps a random model when weights are missing from the file: the backend refuses it."""
    from safetensors.torch import load_file, save_file

    ckpt = _copy_without_marker(tiny_checkpoint, tmp_path / "ckpt")
    # without the test marker, complete weights load fine
    load_backend(BackendConfig(checkpoint_dir=ckpt))
    weights = load_file(str(ckpt / "model.safetensors"))
    dropped = [k for k in weights if "action_preprocessor" in k]
    assert dropped
    save_file({k: v for k, v in weights.items() if k not in dropped}, str(ckpt / "model.safetensors"))
    with pytest.raises(RandomWeightsError, match="weight tensors"):
        load_backend(BackendConfig(checkpoint_dir=ckpt))
    load_backend(BackendConfig(checkpoint_dir=ckpt, allow_random_weights=True))


def test_pickle_checkpoints_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = _copy_without_marker(tiny_checkpoint, tmp_path / "ckpt")
    (ckpt / "model.safetensors").rename(ckpt / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickle files"):
        load_backend(BackendConfig(checkpoint_dir=ckpt))


def test_layout_errors_say_what_to_do(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a folder"):
        load_backend(BackendConfig(checkpoint_dir=tmp_path / "nope"))
    bare = tmp_path / "bare"
    shutil.copytree(tiny_checkpoint / "wallx_backbone", bare)
    with pytest.raises(CheckpointError, match="bare WALL-OSS backbone"):
        load_backend(BackendConfig(checkpoint_dir=bare))
    hub = _copy_without_marker(tiny_checkpoint, tmp_path / "hub")
    shutil.rmtree(hub / "wallx_backbone")
    cfg = json.loads((hub / "config.json").read_text())
    cfg["pretrained_name_or_path"] = "x-square-robot/wall-oss-flow"
    (hub / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="pass backbone_dir"):
        load_backend(BackendConfig(checkpoint_dir=hub))
    # ... and a local backbone folder makes it load
    load_backend(BackendConfig(checkpoint_dir=hub, backbone_dir=tiny_checkpoint / "wallx_backbone"))


def test_config_validation_messages() -> None:
    with pytest.raises(BackendConfigError, match="mode must be"):
        BackendConfig(checkpoint_dir=Path("/x"), mode="ar")
    with pytest.raises(BackendConfigError, match="device must be"):
        BackendConfig(checkpoint_dir=Path("/x"), device="tpu")
    with pytest.raises(BackendConfigError, match="dtype must be"):
        BackendConfig(checkpoint_dir=Path("/x"), dtype="float16")
    with pytest.raises(BackendConfigError, match="checkpoint_dir is empty"):
        BackendConfig(checkpoint_dir=Path(""))


def test_fast_mode_with_local_dct_tokenizer(tiny_fast_checkpoint: Path) -> None:
    """Fast mode end to end: generation -> action tokens -> DCT decode -> unnormalised joints."""
    fast = load_backend(BackendConfig(checkpoint_dir=tiny_fast_checkpoint, allow_random_weights=True, seed=0,
                                      fast_action_tokens_only=True, fast_min_new_tokens=100))
    assert fast.mode == "fast"
    chunk = fast.predict_chunk(observation(3))
    assert chunk.actions.shape == (32, 14)  # 20 model dims, the 14 ALOHA joints mapped
    assert np.all(np.isfinite(chunk.actions))
    again = fast.predict_chunk(observation(3))
    np.testing.assert_array_equal(chunk.actions, again.actions)


def test_fast_mode_without_action_tokens_is_a_clear_error(tiny_fast_checkpoint: Path) -> None:
    """A model that ends generation at once (only end-of-sequence allowed) yields InferenceError, no chunk."""
    fast = load_backend(BackendConfig(checkpoint_dir=tiny_fast_checkpoint, allow_random_weights=True, seed=0))
    model = fast._policy.model
    eos = model.processor.tokenizer.eos_token_id
    vocab = model.get_output_embeddings().weight.shape[0]
    model.generation_config.suppress_tokens = [i for i in range(vocab) if i != eos]
    with pytest.raises(InferenceError, match="no decodable action tokens"):
        fast.predict_chunk(observation(3))


def test_fast_mode_refuses_code_tokenizer_without_trust(tiny_fast_checkpoint: Path, tmp_path: Path) -> None:
    tok = tmp_path / "remote_tok"
    shutil.copytree(tiny_fast_checkpoint / "action_tokenizer", tok)
    (tok / "wallx_ros_action_tokenizer.json").unlink()  # only the remote-code form is left
    cfg = BackendConfig(checkpoint_dir=tiny_fast_checkpoint, allow_random_weights=True, action_tokenizer_dir=tok)
    with pytest.raises(CheckpointError, match="executes Python code"):
        load_backend(cfg)
