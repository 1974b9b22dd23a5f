"""Checks on a checkpoint folder BEFORE LeRobot or transformers open anything in it.

A policy folder is data from elsewhere (a training run, a colleague, a download). The loaders read files by
name from it, and some of what they read can run code or touch files outside it. So, first:

* every entry is a regular file or a folder, readable by this process: no FIFOs, devices or sockets (a FIFO
  named ``model.safetensors`` blocks the loader forever), no dangling links;
* no symlink resolves outside the folder: a link to ``/etc/...`` or ``/dev/zero`` is refused. Exception: a
  Hugging Face cache snapshot (``models--org--name/snapshots/<rev>/``) links into its own ``blobs/`` folder;
  those links may resolve anywhere inside ``models--org--name/``;
* weights are safetensors: pickle files (``.bin .pt .pth .ckpt .pkl``) execute code when unpickled;
  a folder that holds pickle weights and no safetensors is refused (transformers would load the pickle);
* LeRobot processor pipelines (``policy_preprocessor.json`` / ``policy_postprocessor.json``) name each step
  by ``registry_name`` (a step class LeRobot registered) or by ``class`` (a dotted path that LeRobot IMPORTS
  and CALLS with the step's ``config`` as keyword arguments: ``{"class": "subprocess.Popen", "config":
  {"args": [...]}}`` runs a program). Only registered step names are accepted, and each ``state_file``
  must be a plain file name in the folder.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from wallx_ros.policy.errors import CheckpointError

__all__ = ["PICKLE_SUFFIXES", "check_folder", "check_processor_config", "check_weights_are_safetensors",
           "pickle_files"]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_MAX_ENTRIES = 20_000
_CONVERT_HINT = ("convert them once, offline, with the restricted unpickler: python -c \"import torch, "
                 "safetensors.torch as s; s.save_file(torch.load('pytorch_model.bin', weights_only=True), "
                 "'model.safetensors')\" (then remove the pickle files)")


def _allowed_roots(root: Path) -> list[Path]:
    roots = [root]
    if root.parent.name == "snapshots" and root.parent.parent.name.startswith(("models--", "datasets--")):
        roots.append(root.parent.parent)  # Hugging Face cache: snapshots/<rev>/* -> ../../blobs/<hash>
    return roots


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def check_folder(folder: Path, label: str) -> Path:
    """Validate every entry under ``folder`` (see module doc); returns the resolved folder."""
    if not folder.exists():
        raise CheckpointError(f"{label} {str(folder)!r} is not a folder: it does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{label} {str(folder)!r} is not a folder: give the folder that holds config.json")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise CheckpointError(f"{label} {str(folder)!r} is not readable by this user (check its permissions)")
    root = folder.resolve()
    roots = _allowed_roots(root)
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*dirnames, *filenames):
            seen += 1
            if seen > _MAX_ENTRIES:
                raise CheckpointError(f"{label} {str(folder)!r} holds more than {_MAX_ENTRIES} entries: "
                                      "is it really a checkpoint folder?")
            _check_entry(Path(dirpath) / name, root, roots, label)
    return root


def _check_entry(path: Path, root: Path, roots: Sequence[Path], label: str) -> None:
    rel = path.relative_to(root)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        target = path.resolve()
        if not target.exists():
            raise CheckpointError(f"{label}: {rel} is a dangling symlink (to {os.readlink(path)!r})")
        if not _inside(target, roots):
            raise CheckpointError(f"{label}: {rel} is a symlink to {str(target)!r}, outside the checkpoint folder; "
                                  "copy the file into the folder instead")
        info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise CheckpointError(f"{label}: folder {rel} is not readable by this user")
        return
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{label}: {rel} is not a regular file (a FIFO, device or socket): refusing to read it")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{label}: {rel} is not readable by this user (check its permissions)")


def pickle_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)


def check_weights_are_safetensors(folder: Path, label: str) -> list[str]:
    """Refuse a folder whose weights exist only as pickle files; return pickle files that will be ignored."""
    pickles = pickle_files(folder)
    if pickles and not any(p.suffix == ".safetensors" for p in folder.iterdir()):
        raise CheckpointError(f"{label} {str(folder)!r} holds pickle weights {pickles} and no .safetensors: pickle "
                              f"files can execute code when loaded and are refused; {_CONVERT_HINT}")
    return pickles


def check_processor_config(path: Path, registered: Collection[str]) -> None:
    """Refuse a LeRobot processor pipeline config that would import/call anything but registered steps."""
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise CheckpointError(f"{path} not found: a LeRobot policy folder holds its processor pipelines") from err
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{path} is not valid UTF-8 JSON: {err}") from err
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list):
        raise CheckpointError(f"{path}: expected an object with a 'steps' list")
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise CheckpointError(f"{path}: step {i} is not an object")
        if "class" in step or "registry_name" not in step:
            what = step.get("class", "no registry_name")
            raise CheckpointError(
                f"{path}: step {i} names {what!r} instead of a registered processor step; LeRobot would import and "
                "call it with the step's config (arbitrary code). Only registered steps are accepted "
                f"(e.g. {sorted(registered)[:4]})")
        name = step["registry_name"]
        if not isinstance(name, str) or name not in registered:
            raise CheckpointError(f"{path}: step {i} registry_name {name!r} is not a registered LeRobot processor step")
        state_file = step.get("state_file")
        if state_file is not None and (not isinstance(state_file, str) or Path(state_file).name != state_file
                                       or state_file in ("", ".", "..") or not state_file.endswith(".safetensors")):
            raise CheckpointError(f"{path}: step {i} state_file {state_file!r} must be a .safetensors file name in the "
                                  "same folder")
