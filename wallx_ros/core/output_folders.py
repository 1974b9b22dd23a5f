"""Output folders a tool may write: never one that holds data the tool did not make.

Every command that writes an output folder claims it first (:func:`claim_folder`): a folder that does not
exist or is empty is created and marked as the tool's (a small ``.wallx_ros_output`` file naming the tool); a
non-empty folder is refused unless the tool marked it earlier (re-running a command then replaces its own
output) or the user passed ``--force``. :func:`replace_folder` also empties a folder it may claim, for tools
that rebuild the whole folder (the test checkpoint). The same rule for single files: :func:`claim_file`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from wallx_ros.core.errors import CoreError

__all__ = ["MARKER", "OutputFolderError", "claim_file", "claim_folder", "made_by", "replace_folder"]

MARKER = ".wallx_ros_output"


class OutputFolderError(CoreError):
    """An output path holds data the tool did not make (the message says how to go on)."""


def made_by(folder: Path, tool: str) -> bool:
    """True if ``tool`` marked ``folder`` as its output."""
    try:
        return (folder / MARKER).read_text().strip() == tool
    except OSError:
        return False


def claim_folder(folder: str | Path, tool: str, force: bool = False,
                 ours: Callable[[Path], bool] | None = None,
                 forced: str = "write into it (files of the same names are replaced)") -> Path:
    """Make ``folder`` the output of ``tool`` (created if missing) or raise OutputFolderError.

    ``ours``: another test that the folder is the tool's (e.g. one written before markers existed).
    ``forced``: what ``--force`` would do, for the message.
    """
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{path} exists and is not a folder: choose another output path")
    if path.is_dir() and any(path.iterdir()) and not force and not made_by(path, tool) and \
            not (ours is not None and ours(path)):
        raise OutputFolderError(f"{path} exists and is not empty, and {tool} did not create it: choose a new folder, "
                                f"or pass --force to {forced}")
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(tool + "\n")
    return path


def replace_folder(folder: str | Path, tool: str, force: bool = False,
                   ours: Callable[[Path], bool] | None = None) -> Path:
    """``claim_folder``, then remove everything in it: for tools that rebuild their whole output."""
    path = claim_folder(folder, tool, force, ours, forced="delete everything in it and write the new output")
    for entry in path.iterdir():
        if entry.name == MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return path


def claim_file(path: str | Path, force: bool = False) -> Path:
    """A file to write: refused if it exists (unless ``force``)."""
    target = Path(path).expanduser()
    if target.exists() and not force:
        raise OutputFolderError(f"{target} exists: choose another file, or pass --force to replace it")
    if target.is_dir():
        raise OutputFolderError(f"{target} is a folder: give a file path")
    return target
