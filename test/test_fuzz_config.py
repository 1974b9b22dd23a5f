"""Property-based fuzzing of configuration and parameter loading.

* ``BackendConfig`` from arbitrary values: a clear ``BackendConfigError`` or a valid config whose safety
  switches (``allow_random_weights``, ``trust_remote_code``) are on only when set;
* ``wallx_ros_robot.json`` (``RobotMapping.load``) from arbitrary bytes and mutated valid files;
* the checkpoint's ``config.json`` / ``wallx_ros_checkpoint.json`` through the backend's readers and LeRobot's
  draccus parser: ``CheckpointError`` or a parsed config;
* the policy node's parameters: a real ``PolicyNode`` (in this process, real rclpy) with arbitrary parameter
  overrides is configured against the real tiny backend (loaded once): configure succeeds or FAILS with a
  message (never the "unexpected error" path, never an exception), and an accepted configuration never
  disables a safety check (stale-input watchdog, limits) by accident;
* YAML parameter files through rcl's own parser (``--params-file``) into that node.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fuzz_ledger import count, examples, fuzz_settings, trial
from hypothesis import given
from hypothesis import strategies as st
from ros_harness import private_domain_id

from wallx_ros.core.errors import CoreError, RobotMappingError
from wallx_ros.core.robot_mapping import ROBOT_MAPPING_FILENAME, RobotMapping
from wallx_ros.policy.config import BackendConfig
from wallx_ros.policy.errors import BackendConfigError, CheckpointError, PolicyError

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)


# -- BackendConfig --------------------------------------------------------------------------------------
@fuzz_settings(300)
@given(checkpoint=st.one_of(st.text(max_size=30), st.just("."), st.just("/tmp/ckpt")),
       device=st.one_of(st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:1", "auto", "mps", "cuda:", "CPU"]),
                        st.text(max_size=10)),
       dtype=st.one_of(st.sampled_from(["bfloat16", "float32", "float16"]), st.text(max_size=8)),
       mode=st.one_of(st.sampled_from(["", "diffusion", "fast", "flow"]), st.text(max_size=8)),
       num_threads=st.integers(-5, 1000), fast_min=st.integers(-5, 200), seed=st.one_of(st.none(), st.integers()),
       allow_random=st.booleans(), trust=st.booleans())
def test_fuzz_backend_config(checkpoint: str, device: str, dtype: str, mode: str, num_threads: int, fast_min: int,
                             seed: int | None, allow_random: bool, trust: bool) -> None:
    with trial("BackendConfig", (BackendConfigError,)) as flag:
        cfg = BackendConfig(checkpoint_dir=Path(checkpoint), device=device, dtype=dtype, mode=mode,
                            num_threads=num_threads, fast_min_new_tokens=fast_min, seed=seed,
                            allow_random_weights=allow_random, trust_remote_code=trust)
        if cfg.trust_remote_code != trust or cfg.allow_random_weights != allow_random:
            flag("a safety switch changed on its own")
        if not (cfg.device in ("cpu", "cuda", "auto") or cfg.device.startswith("cuda:")) or cfg.mode not in (
                "", "diffusion", "fast") or str(cfg.checkpoint_dir) in ("", "."):
            flag(f"accepted an invalid config {cfg}")
    defaults = BackendConfig(checkpoint_dir=Path("/x"))
    assert not defaults.trust_remote_code and not defaults.allow_random_weights


# -- wallx_ros_robot.json -------------------------------------------------------------------------------
VALID_MAPPING = {"state_names": ["a", "b"], "action_names": ["a", "", "b"], "cameras": ["face_view"], "fps": 50.0,
                 "robot_type": "test"}


@st.composite
def mapping_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "json", "bytes", "deep", "not_utf8"]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        depth = draw(st.sampled_from([1, 10, 100_000]))
        return b"[" * depth + b"]" * depth
    if kind == "not_utf8":
        return json.dumps(VALID_MAPPING).encode()[:-3] + draw(st.sampled_from([b"\xff\xfe", b"\xc3", b"\x80"])) + b"}"
    doc: dict[str, Any] = dict(VALID_MAPPING)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*VALID_MAPPING, "extra"]))
        if draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = draw(st.one_of(json_values, st.sampled_from([float("nan"), float("inf"), -1, 0, "50", [],
                                                                     ["a", "a"], [""], "abc", True])))
    return json.dumps(doc).encode()


@fuzz_settings(300)
@given(mapping_files())
def test_fuzz_robot_mapping_json(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    folder = tmp_path_factory.mktemp("mapping", numbered=True)
    (folder / ROBOT_MAPPING_FILENAME).write_bytes(content)
    with trial("wallx_ros_robot.json -> RobotMapping", (RobotMappingError,)) as flag:
        m = RobotMapping.load(folder)
        if not (m.state_names and all(m.state_names) and len(set(m.state_names)) == len(m.state_names)):
            flag(f"bad state names accepted: {m.state_names}")
        used = m.action_joint_names
        if not used or len(set(used)) != len(used) or not (math.isfinite(m.fps) and m.fps > 0):
            flag(f"bad mapping accepted: {m}")
    shutil.rmtree(folder, ignore_errors=True)


# -- checkpoint config.json / checkpoint info through the backend's readers (LeRobot draccus) ------------
@st.composite
def policy_configs(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes", "not_utf8"]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "not_utf8":
        return b'{"type": "wall_x", "x": "\xff"}'
    doc = dict(base)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(doc)))
        if draw(st.integers(0, 3)) == 0:
            doc.pop(key)
        else:
            doc[key] = draw(st.one_of(json_values, st.sampled_from([None, -1, "cuda", {"type": "VISUAL"}, []])))
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def policy_config_base(tiny_checkpoint: Path) -> dict[str, Any]:
    return json.loads((tiny_checkpoint / "config.json").read_text())


def test_fuzz_checkpoint_configs(policy_config_base: dict[str, Any], tmp_path: Path) -> None:
    from wallx_ros.policy import wallx_backend

    @fuzz_settings(30)
    @given(policy_configs(policy_config_base), st.one_of(json_values.map(json.dumps).map(str.encode),
                                                        st.binary(max_size=40)))
    def run(config_bytes: bytes, info_bytes: bytes) -> None:
        (tmp_path / "config.json").write_bytes(config_bytes)
        (tmp_path / "wallx_ros_checkpoint.json").write_bytes(info_bytes)
        with trial("checkpoint config.json -> LeRobot config (draccus)", (CheckpointError,)):
            wallx_backend._read_policy_config(tmp_path)
        with trial("wallx_ros_checkpoint.json -> checkpoint info", (CheckpointError,)) as flag:
            info = wallx_backend._checkpoint_info(tmp_path)
            if not isinstance(info, dict):
                flag(f"checkpoint info is {type(info)}")

    run()


# -- policy node parameters (real rclpy node, real backend) ---------------------------------------------
def _param_values(spec: Any) -> st.SearchStrategy[Any]:
    from wallx_ros.core.parameter_table import ParamType

    weird_floats = st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300, math.inf, -math.inf, math.nan, 0.5, 2.0, 50.0])
    weird_strings = st.sampled_from(["", " ", "nan", "cuda", "x" * 2000, "../../etc", "compressed", "none", "delta",
                                     "reject", "crossfade", "joint_state", "array", "action", "true", "auto"])
    by_type: dict[ParamType, st.SearchStrategy[Any]] = {
        ParamType.BOOL: st.booleans(),
        ParamType.INTEGER: st.one_of(st.integers(-3, 100), st.sampled_from([-(2**63), 2**63 - 1, 0, 1])),
        ParamType.DOUBLE: st.one_of(weird_floats, st.floats(-100, 100)),
        ParamType.STRING: st.one_of(weird_strings, st.text(max_size=20)),
        ParamType.STRING_ARRAY: st.lists(st.sampled_from(["face_view", "left_wrist_view", "right_wrist_view",
                                                          "left_waist", "j", ""]), min_size=1, max_size=16),
        ParamType.DOUBLE_ARRAY: st.lists(st.one_of(weird_floats, st.floats(-5, 5)), min_size=1, max_size=15)}
    same = by_type[spec.type]
    other = st.one_of(st.integers(-2, 2), st.floats(-2, 2), st.text(max_size=5), st.booleans())
    return st.sampled_from([True] * 8 + [False]).flatmap(lambda right_type: same if right_type else other)


def _build_node(overrides: dict[str, Any], context: Any) -> Any:
    from rclpy.parameter import Parameter

    from wallx_ros.nodes.policy_node import PolicyNode

    return PolicyNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])


@pytest.fixture(scope="module")
def private_context() -> Any:
    """An rcl context on a domain of its own for the policy nodes this module builds in the test process.
    In the session's context they would be more "wallx_policy" nodes (with lifecycle services) beside the
    real node a later module starts: that node's change_state calls then went unanswered (seen in CI)."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=private_domain_id())
    yield context
    rclpy.shutdown(context=context)
    context.destroy()  # frees the DDS participant now (shutdown alone leaves it to the garbage collector)


def _declaration_refusals() -> tuple[type[BaseException], ...]:
    from rclpy.exceptions import ParameterException

    return (ParameterException,)


@pytest.fixture(scope="module")
def real_backend(tiny_checkpoint: Path) -> Any:
    from wallx_ros.policy import load_backend

    return load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))


def _configure_and_check(node: Any, flag: Any) -> None:
    """Configure; FAILURE must carry a message; SUCCESS must keep every safety check working."""
    from rclpy.lifecycle import TransitionCallbackReturn

    try:
        result = node.trigger_configure()
        if result == TransitionCallbackReturn.ERROR:
            flag(f"configure hit the unexpected-error path: {node.configure_error}")
        if result == TransitionCallbackReturn.FAILURE:
            if not node.configure_error:
                flag("configure failed without saying why")
            raise PolicyError(node.configure_error)
        cfg, control = node.config, node.control
        if not (math.isfinite(cfg.max_age_s) and cfg.max_age_s > 0):
            flag(f"accepted max_age_s {cfg.max_age_s}: the stale-input watchdog would never fire")
        if not (math.isfinite(cfg.sync_tolerance_s) and cfg.sync_tolerance_s > 0):
            flag(f"accepted sync_tolerance_s {cfg.sync_tolerance_s}")
        limits = control.safety.limits
        if any(math.isnan(v) for v in (*limits.lower, *limits.upper, *limits.max_velocity)):
            flag("NaN joint limits accepted")
        if any(lo > hi for lo, hi in zip(limits.lower, limits.upper, strict=True)):
            flag("lower > upper accepted")
        rate = cfg.control_rate_hz or node.backend.fps
        if not (math.isfinite(rate) and 0 < rate <= 10_000):
            flag(f"control rate {rate} Hz accepted: the watchdog timer would not run sensibly")
        if not (math.isfinite(cfg.diagnostics_rate_hz) and cfg.diagnostics_rate_hz <= 10_000):
            flag(f"diagnostics_rate_hz {cfg.diagnostics_rate_hz} accepted")
    finally:
        node.trigger_cleanup() if node.control is not None else None


def test_fuzz_policy_node_parameters(private_context: Any, real_backend: Any, tiny_checkpoint: Path,
                                    monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wallx_ros.nodes import policy_node
    from wallx_ros.nodes.policy_parameters import TABLE

    monkeypatch.setattr(policy_node, "load_backend", lambda cfg: real_backend)
    specs = [s for s in TABLE.params if s.name not in ("checkpoint_dir", "warmup", "autostart", "urdf_path",
                                                     "num_threads", "gil_switch_interval_s")]
    base = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "warmup": False,
            "num_threads": 1}

    @fuzz_settings(60)
    @given(st.lists(st.sampled_from(specs).flatmap(lambda s: st.tuples(st.just(s.name), _param_values(s))),
                    min_size=1, max_size=3))
    def run(overrides: list[tuple[str, Any]]) -> None:
        params = {**base, **dict(overrides)}
        with trial("policy node parameters -> configure", (*_declaration_refusals(), PolicyError, CoreError)) as flag:
            node = _build_node(params, private_context)
            try:
                _configure_and_check(node, flag)
            finally:
                node.destroy_node()

    run()


def test_fuzz_yaml_parameter_files(real_backend: Any, tiny_checkpoint: Path, tmp_path: Path,
                                   monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A params file goes through rcl's YAML parser (C) before the node sees it: fuzz the whole path."""
    import rclpy

    from wallx_ros.nodes import policy_node

    monkeypatch.setattr(policy_node, "load_backend", lambda cfg: real_backend)
    base = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "warmup": False}
    yaml_scalars = st.one_of(st.integers(-10, 10), st.floats(allow_nan=True), st.text(max_size=10), st.booleans(),
                             st.sampled_from(["1", "1.0", "0.5", ".nan", "-.inf", "~", "yes", "0x10", "1e3", "[]"]))
    keys = st.sampled_from(["max_age_s", "sync_tolerance_s", "execution_horizon", "max_velocity", "position_lower",
                            "camera_transport", "output_mode", "blend_steps", "control_rate_hz", "instruction",
                            "state_joint_names", "gripper_scale", "latency_offset_s", "not_a_parameter"])

    domain_id = private_domain_id()  # these in-process policy nodes must not meet the session's nodes

    @fuzz_settings(20)  # a new rcl context (DDS participant) per example: the slowest fuzz target
    @given(st.one_of(st.dictionaries(keys, st.one_of(yaml_scalars, st.lists(yaml_scalars, max_size=3)), max_size=4)
                     .map(lambda d: yaml.safe_dump({"/**": {"ros__parameters": {**base, **d}}})),
                     st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
    def run(text: str) -> None:
        path = tmp_path / "params.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        context = rclpy.Context()
        refusals = (*_declaration_refusals(), PolicyError, CoreError, RuntimeError)
        with trial("YAML params file (rcl parser) -> policy node", refusals) as flag:
            try:
                rclpy.init(args=["wallx", "--ros-args", "--params-file", str(path)], context=context,
                           domain_id=domain_id)
            except Exception as err:  # rcl refuses the file: rclpy raises RCLError (a RuntimeError) with rcl's text
                count("YAML params file: refused by rcl's parser", "refused")
                raise RuntimeError(str(err)) from err
            from rclpy.parameter import Parameter

            from wallx_ros.nodes.policy_node import PolicyNode

            try:
                node = PolicyNode(context=context, parameter_overrides=[
                    Parameter(k, value=v) for k, v in base.items()] if "ros__parameters" not in text else [])
                try:
                    _configure_and_check(node, flag)
                finally:
                    node.destroy_node()
            finally:
                if context.ok():
                    rclpy.shutdown(context=context)
                context.destroy()

    run()


def test_config_fuzz_properties_can_fail(tmp_path: Path) -> None:
    """Sanity: a mapping that repeats a joint is refused, so the accepted-mapping property is meaningful."""
    (tmp_path / ROBOT_MAPPING_FILENAME).write_text(json.dumps({**VALID_MAPPING, "state_names": ["a", "a"]}))
    with pytest.raises(RobotMappingError):
        RobotMapping.load(tmp_path)


# -- instruction strings (std_msgs/String on ~/instruction, or the parameter) through the real tokenizer ----
CONTROL_PIECES = ["<|image_pad|>", "<|action|>", "<|propri|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                  "<|action_token_3|>", "<|endoftext|>", "<|image_pad", "image_pad|>", "<|", "|>"]


@st.composite
def instructions(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.text(max_size=30), st.sampled_from(CONTROL_PIECES),
                                    st.sampled_from(["\x00", "\u202e", "\ufeff", "🤖", "\n\n", "ü", "{task}"])),
                          max_size=8))
    return "".join(parts) * draw(st.sampled_from([1, 1, 1, 40]))


def test_fuzz_instructions(real_backend: Any) -> None:
    """An accepted instruction never reaches the model as a control token; refused ones say which token."""
    from wallx_ros.core.types import Observation

    tokenizer = real_backend._policy.model.processor.tokenizer
    control_ids = {tokenizer.convert_tokens_to_ids(t) for t in real_backend._control_tokens}

    @fuzz_settings(150)
    @given(instructions())
    def run(text: str) -> None:
        with trial("instruction string -> model tokens", (PolicyError,)) as flag:
            problem = real_backend.instruction_problem(text)
            tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = set(tokens)
            if problem:
                if not ids & control_ids and len(tokens) <= real_backend._instruction_room:
                    flag(f"refused an instruction that has no control tokens and fits the prompt: {problem}")
                raise PolicyError(problem)
            if len(tokens) > real_backend._instruction_room:
                flag(f"accepted an instruction of {len(tokens)} tokens: LeRobot would truncate the action slots")
            if ids & control_ids:
                flag(f"{text[:80]!r} reaches the model as control tokens {sorted(ids & control_ids)[:5]}")

    run()
    # end to end: nasty but accepted instructions run through the real model; refused ones never reach it
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 256, (192, 256, 3), dtype=np.uint8) for cam in real_backend.cameras}
    for text in ["", "\x00\u202e🤖 ü" * 30, "<|image pad|> {task} %s", "insert the peg" * 60][:examples(2)]:
        with trial("instruction string -> real WallX inference", (PolicyError,)) as flag:
            chunk = real_backend.predict_chunk(Observation(images, np.zeros(14, np.float32), text, 0))
            if not np.all(np.isfinite(chunk.actions)):
                flag("non-finite chunk")
    with pytest.raises(PolicyError, match="control token"):
        real_backend.predict_chunk(Observation(images, np.zeros(14, np.float32), "go <|image_pad|>", 0))
