#!/usr/bin/env python3
"""Make a venv with wallx_ros installed editable (``pip install -e .``) a ROS 2 (ament) prefix for it.

An editable install registers nothing in the ament index and installs no data files, so ``ros2 launch
wallx_ros ...``, ``ros2 run wallx_ros ...`` and ``get_package_share_directory('wallx_ros')`` would not find the
package. This writes what colcon's install space has, pointing back to the checkout (like ``colcon build
--symlink-install``: edits to launch/ and config/ take effect at once):

    <prefix>/share/ament_index/resource_index/packages/wallx_ros   the ament index marker
    <prefix>/share/wallx_ros/{package.xml,launch/*,config/*,msg/*} symlinks into the checkout
    <prefix>/lib/wallx_ros/<exe>                                   one launcher per executable of setup.py

Idempotent; re-run it (scripts/setup.sh does, every time) after adding a file to launch/, config/ or msg/.
Links to files that went away and launchers of executables setup.py no longer lists are removed.
Usage: python scripts/ament_prefix.py [--prefix PREFIX] [--source CHECKOUT] [--python INTERPRETER]
(defaults: this interpreter's sys.prefix, the checkout this script is in, this interpreter).
"""

from __future__ import annotations

import argparse
import ast
import os
import stat
import sys
from pathlib import Path

PACKAGE = "wallx_ros"
SHARED = ("package.xml", "launch", "config", "msg")
MARKER = "# ROS executable launcher written by scripts/ament_prefix.py"


def executables(source: Path) -> dict[str, str]:
    """``EXECUTABLES`` of setup.py (executable name -> "module:function"), read without running setup.py."""
    tree = ast.parse((source / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXECUTABLES" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
    raise SystemExit(f"{source / 'setup.py'} has no EXECUTABLES dict")


def _symlink(target: Path, link: Path) -> None:
    if link.is_symlink() or link.is_file():
        if link.is_symlink() and Path(os.readlink(link)) == target:
            return
        link.unlink()
    link.symlink_to(target)


def _link_folder(source: Path, folder: Path) -> list[Path]:
    """``folder`` as a real directory of per-file symlinks into ``source`` (ros2 launch finds launch files
    with os.walk, which does not enter a symlinked directory); links whose file went away are removed."""
    if folder.is_symlink():
        folder.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    files = {f.name: f for f in sorted(source.iterdir()) if f.is_file() and not f.name.startswith(".")}
    for link in folder.iterdir():
        if link.is_symlink() and link.name not in files:
            link.unlink()
    for name, target in files.items():
        _symlink(target, folder / name)
    return [folder / name for name in files]


def _launcher(python: str, target: str) -> str:
    module, func = target.split(":")
    return f"#!{python}\n{MARKER}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n"


def register(prefix: Path, source: Path, python: str) -> list[Path]:
    """Write the ament layout for ``source`` into ``prefix``; return the paths written or checked."""
    written: list[Path] = []
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    marker = index / PACKAGE
    marker.write_text((source / "resource" / PACKAGE).read_text())
    written.append(marker)
    share = prefix / "share" / PACKAGE
    share.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        if (source / name).is_dir():
            written += _link_folder(source / name, share / name)
        else:
            _symlink(source / name, share / name)
            written.append(share / name)
    lib = prefix / "lib" / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    exes = executables(source)
    for path in lib.iterdir():
        if path.name not in exes and path.is_file() and MARKER in path.read_text(errors="replace"):
            path.unlink()
    for exe, target in exes.items():
        path = lib / exe
        if path.is_symlink():
            path.unlink()
        path.write_text(_launcher(python, target))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", type=Path, default=Path(sys.prefix), help="the venv (default: this one)")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the wallx_ros checkout (default: the one this script is in)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the launchers")
    args = parser.parse_args(argv)
    written = register(args.prefix.absolute(), args.source.resolve(), args.python)
    launchers = sum(1 for p in written if p.parent.name == PACKAGE and p.parent.parent.name == "lib")
    print(f"ament prefix {args.prefix.absolute()}: share/{PACKAGE} -> {args.source.resolve()}, {launchers} executables "
          f"in lib/{PACKAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
