"""Safe loading of checkpoints: nothing in a policy folder may run code or reach outside the folder.

* pickle weights (.bin .pt .pth ...) are refused, in the policy folder and in the backbone folder, before any
  loader unpickles them (a pickle whose loading would leave a marker file proves it never ran);
* trust_remote_code is off by default; transformers' ``auto_map`` in the backbone's configs runs no code;
* LeRobot processor configs may only name registered steps: stock LeRobot imports and CALLS a ``class`` path
  from ``policy_preprocessor.json`` (shown here running a command), the backend refuses such a file first;
* paths are validated: symlinks escaping the folder, dangling links, FIFOs, a file instead of a folder,
  unreadable files;
* no eval/exec/pickle/unsafe YAML anywhere in the package (source audit).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_ledger import event

from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.checkpoint_files import check_folder, check_processor_config
from wallx_ros.policy.errors import CheckpointError

REPO = Path(__file__).resolve().parent.parent


def _copy(tiny_checkpoint: Path, dst: Path) -> Path:
    shutil.copytree(tiny_checkpoint, dst, symlinks=True)
    return dst


class _LeavesMarker:
    """Unpickling this creates ``path``: the proof that a loader executed pickle code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def _outcome(case: str, refused: bool, message: str) -> None:
    event("safe_loading", case=case, outcome="refused" if refused else "ACCEPTED", message=message[:160])


# -- pickle --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["policy", "backbone"])
def test_pickle_weights_are_refused_before_anything_unpickles_them(tiny_checkpoint: Path, tmp_path: Path,
                                                                   where: str) -> None:
    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    marker = tmp_path / "pickle_ran"
    folder = ckpt if where == "policy" else ckpt / "wallx_backbone"
    (folder / "model.safetensors").unlink()
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump(_LeavesMarker(marker), f)
    with pytest.raises(CheckpointError, match="pickle") as err:
        load_backend(BackendConfig(checkpoint_dir=ckpt, allow_random_weights=True))
    assert not marker.exists(), "a loader unpickled the file"
    assert "safetensors" in str(err.value)
    _outcome(f"pickle weights only ({where} folder)", True, str(err.value))


# -- remote code ---------------------------------------------------------------------------------------
def test_trust_remote_code_is_off_by_default() -> None:
    from wallx_ros.nodes.policy_parameters import TABLE

    assert BackendConfig(checkpoint_dir=Path("/x")).trust_remote_code is False
    assert TABLE["trust_remote_code"].default is False
    assert TABLE["allow_random_weights"].default is False
    assert TABLE["allow_unlimited_motion"].default is False


def test_auto_map_in_backbone_configs_runs_no_code(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """transformers' auto_map points Auto* classes at Python files in the folder; without trust_remote_code
    (never passed for the backbone) they must not be imported."""
    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    marker = tmp_path / "remote_code_ran"
    backbone = ckpt / "wallx_backbone"
    (backbone / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Evil: pass\n")
    auto_map = {"AutoConfig": "evil.Evil", "AutoProcessor": "evil.Evil", "AutoTokenizer": ["evil.Evil", None],
                "AutoImageProcessor": "evil.Evil", "AutoModel": "evil.Evil"}
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        path = backbone / name
        if path.is_file():
            doc = json.loads(path.read_text())
            doc["auto_map"] = auto_map
            path.write_text(json.dumps(doc))
    try:
        load_backend(BackendConfig(checkpoint_dir=ckpt, allow_random_weights=True))
        refused, message = False, "loaded with the local classes"
    except CheckpointError as err:
        refused, message = True, str(err)
    assert not marker.exists(), "code from the checkpoint folder was executed"
    _outcome("auto_map to a Python file in the backbone", refused, message + " (no code ran)")


def test_fast_tokenizer_code_needs_trust_remote_code(tmp_path: Path) -> None:
    from wallx_ros.policy.wallx_backend import _action_tokenizer

    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="trust_remote_code"):
        _action_tokenizer(tmp_path, BackendConfig(checkpoint_dir=tmp_path))


# -- processor configs ---------------------------------------------------------------------------------
def _inject_class_step(ckpt: Path, marker: Path) -> None:
    path = ckpt / "policy_preprocessor.json"
    doc = json.loads(path.read_text())
    doc["steps"].insert(0, {"class": "subprocess.run", "config": {"args": ["touch", str(marker)]}})
    path.write_text(json.dumps(doc))


def test_stock_lerobot_runs_a_class_named_in_a_processor_config(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Why the backend checks processor configs: LeRobot imports and calls a ``class`` step with its config."""
    from wallx_ros.lerobot import wallx_model

    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    marker = tmp_path / "processor_code_ran"
    _inject_class_step(ckpt, marker)
    try:
        wallx_model.load_policy_processors(ckpt, "cpu")
    except Exception:  # whatever LeRobot raises afterwards, the command has already run (or not)
        pass
    if not marker.exists():
        pytest.skip("this LeRobot does not import 'class' processor steps (nothing to guard against)")
    event("safe_loading", case="stock LeRobot, 'class': 'subprocess.run' step in policy_preprocessor.json",
          outcome="EXECUTED (LeRobot)", message="the command ran when LeRobot loaded the processor")


def test_backend_refuses_processor_configs_that_name_classes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    marker = tmp_path / "processor_code_ran"
    _inject_class_step(ckpt, marker)
    with pytest.raises(CheckpointError, match="registered processor step") as err:
        load_backend(BackendConfig(checkpoint_dir=ckpt, allow_random_weights=True))
    assert not marker.exists()
    _outcome("'class' step in policy_preprocessor.json (wallx_ros backend)", True, str(err.value))


@pytest.mark.parametrize("step", [{"registry_name": "not_registered"}, {"registry_name": 3}, "text",
                                  {"registry_name": "normalizer_processor", "state_file": "../../x.safetensors"},
                                  {"registry_name": "normalizer_processor", "state_file": "/etc/passwd"}])
def test_processor_config_rules(tmp_path: Path, step: object) -> None:
    path = tmp_path / "policy_preprocessor.json"
    path.write_text(json.dumps({"name": "p", "steps": [step]}))
    with pytest.raises(CheckpointError):
        check_processor_config(path, {"normalizer_processor"})
    path.write_text(json.dumps({"name": "p", "steps": [{"registry_name": "normalizer_processor",
                                                        "state_file": "s.safetensors"}]}))
    check_processor_config(path, {"normalizer_processor"})


# -- paths ---------------------------------------------------------------------------------------------
def _small_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_text("a")
    return root


PATH_CASES = {
    "symlink escaping the folder": lambda f, out: os.symlink(out / "secret", f / "model.safetensors"),
    "symlink to /dev/zero": lambda f, out: os.symlink("/dev/zero", f / "model.safetensors"),
    "symlinked subfolder escaping": lambda f, out: os.symlink(out, f / "wallx_backbone"),
    "dangling symlink": lambda f, out: os.symlink(f / "missing", f / "model.safetensors"),
    "FIFO named model.safetensors": lambda f, out: os.mkfifo(f / "model.safetensors"),
}


@pytest.mark.parametrize("case", list(PATH_CASES))
def test_unsafe_paths_are_refused(tmp_path: Path, case: str) -> None:
    folder = _small_folder(tmp_path / "ckpt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not a checkpoint")
    PATH_CASES[case](folder, outside)
    with pytest.raises(CheckpointError) as err:
        check_folder(folder, "checkpoint_dir")
    _outcome(case, True, str(err.value))


def test_safe_paths_are_accepted(tmp_path: Path) -> None:
    folder = _small_folder(tmp_path / "ckpt")
    os.symlink(folder / "config.json", folder / "alias.json")  # inside: fine
    os.symlink("sub", folder / "sub_alias")
    assert check_folder(folder, "checkpoint_dir") == folder.resolve()
    # a Hugging Face cache snapshot links into its repo's blobs/
    repo = tmp_path / "hub" / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc").write_text("{}")
    snap = repo / "snapshots" / "0123"
    snap.mkdir(parents=True)
    os.symlink("../../blobs/abc", snap / "config.json")
    check_folder(snap, "backbone_dir")
    with pytest.raises(CheckpointError, match="not a folder"):
        check_folder(folder / "config.json", "checkpoint_dir")
    with pytest.raises(CheckpointError, match="not a folder"):
        check_folder(tmp_path / "nope", "checkpoint_dir")


def test_backend_refuses_an_escaping_symlink_before_loading(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = _copy(tiny_checkpoint, tmp_path / "ckpt")
    (ckpt / "wallx_ros_robot.json").unlink()
    os.symlink("/etc/hostname", ckpt / "wallx_ros_robot.json")
    with pytest.raises(CheckpointError, match="outside the checkpoint folder"):
        load_backend(BackendConfig(checkpoint_dir=ckpt, allow_random_weights=True))


def _can_drop_privileges() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    """Permissions only bind a non-root user: as root, the check runs in a child with uid/gid 65534."""
    folder = _small_folder(tmp_path / "ckpt")
    (folder / "model.safetensors").write_text("x")
    os.chmod(folder / "model.safetensors", 0o000)
    code = ("import sys; from pathlib import Path\n"
            "from wallx_ros.policy.checkpoints.checkpoint_files import check_folder\n"
            "from wallx_ros.policy.errors import CheckpointError\n"
            "try:\n    check_folder(Path(sys.argv[1]), 'checkpoint_dir')\nexcept CheckpointError as e:\n"
            "    print(e); sys.exit(3)\n")
    if os.geteuid() != 0:
        with pytest.raises(CheckpointError, match="not readable"):
            check_folder(folder, "checkpoint_dir")
        return
    if not _can_drop_privileges():
        pytest.skip("running as root without setpriv: cannot test a permission check as another user")
    for p in (tmp_path, *tmp_path.parents):  # let the unprivileged child reach the folder
        if p != Path("/"):
            os.chmod(p, os.stat(p).st_mode | 0o005)
    os.chmod(folder, 0o755)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                             "-c", code, str(folder)], env=env, capture_output=True, text=True, timeout=60)
    # e.g. pyenv's shared-library Python 3.12 (the jazzy stack): its libpython lies under /root, which only
    # root can enter, so the loader fails before Python starts; the kilted stack's interpreter runs the check
    if result.returncode not in (0, 3) and any(s in result.stderr for s in ("Permission denied",
                                                                             "error while loading shared libraries")):
        pytest.skip(f"the unprivileged user cannot run this interpreter: {result.stderr[-200:]}")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not readable" in result.stdout
    _outcome("unreadable model.safetensors (mode 000, non-root user)", True, result.stdout.strip())


# -- source audit --------------------------------------------------------------------------------------
def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f"{ast.unparse(f.value)}.{f.attr}" \
                if isinstance(f, ast.Attribute) else ""
            out.append((name, node))
    return out


def test_no_code_execution_from_config_values_in_the_package() -> None:
    """No eval/exec/compile, no pickle/torch.load/marshal, yaml only through safe_load, no shell=True,
    dynamic imports only of literal module names - in wallx_ros/, bench/, scripts and launch files."""
    files = [*REPO.glob("wallx_ros/**/*.py"), *REPO.glob("bench/*.py"), *REPO.glob("launch/*.py")]
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for name, call in _calls(tree):
            where = f"{path.relative_to(REPO)}:{call.lineno}"
            if name in ("eval", "exec", "compile", "__import__", "pickle.load", "pickle.loads", "marshal.loads",
                        "torch.load", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "os.system"):
                problems.append(f"{where}: {name}()")
            if name in ("importlib.import_module", "import_module") and not isinstance(call.args[0], ast.Constant):
                problems.append(f"{where}: import of a computed module name")
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in call.keywords):
                problems.append(f"{where}: shell=True")
            if name.endswith("from_pretrained") and any(
                    k.arg == "trust_remote_code" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in call.keywords):
                problems.append(f"{where}: from_pretrained(trust_remote_code=...)")
    assert problems == [], problems
    event("safe_loading", case=f"source audit of {len(files)} files (eval/exec/pickle/yaml.load/shell/imports)",
          outcome="clean", message="")


def test_sros2_policy_covers_what_moves_the_robot() -> None:
    """config/sros2_policy.xml grants the node's services and command topics to the right enclaves only."""
    import re
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "config" / "sros2_policy.xml").getroot()
    enclaves = {e.get("path"): e for e in root.iter("enclave")}
    assert set(enclaves) == {"/wallx/policy", "/wallx/operator", "/wallx/controller", "/wallx/sensors"}

    def granted(enclave: str, kind: str, rule: str) -> set[str]:
        return {x.text or "" for lst in enclaves[enclave].iter(kind + "s") if lst.get(rule) == "ALLOW"
                for x in lst.iter(kind)}

    source = (REPO / "wallx_ros" / "nodes" / "policy_node.py").read_text()
    services = {f"~{m}" for m in re.findall(r'create_service\(\w+, "~/([a-z_]+)"', source)}
    assert services == {"~pause", "~resume", "~estop", "~ask"}
    assert services <= granted("/wallx/policy", "service", "reply")
    assert {f"/wallx_policy/{s[1:]}" for s in services} <= granted("/wallx/operator", "service", "request")
    for enclave in ("/wallx/controller", "/wallx/sensors"):
        assert not granted(enclave, "service", "request"), f"{enclave} must not call the node's services"
    assert "~joint_trajectory" in granted("/wallx/policy", "topic", "publish")
    readers = [e for e in enclaves if "/wallx_policy/joint_trajectory" in granted(e, "topic", "subscribe")]
    assert readers == ["/wallx/controller"]
    writers = [e for e in enclaves if "/wallx_policy/instruction" in granted(e, "topic", "publish")]
    assert writers == ["/wallx/operator"]
