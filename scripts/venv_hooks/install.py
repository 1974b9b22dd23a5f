"""Install the venv hooks of wallx_ros into the venv of the interpreter running this script (idempotent).

    <venv>/bin/python scripts/venv_hooks/install.py [--check]

Today one hook: ``wallx_ros_torchvision_ops`` (see that file), so that plain LeRobot imports work in the
kilted stack's venv (CPU torch + PyPI torchvision). ``--check``: afterwards, a fresh interpreter must import
torchvision (exit 1 otherwise). Called by scripts/setup.sh; never needs network access.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOOKS = ("wallx_ros_torchvision_ops",)


def main(argv: list[str]) -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    for name in HOOKS:
        source = HERE / f"{name}.py"
        target = site / f"{name}.py"
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
        pth = site / f"{name}.pth"
        line = f"import {name}\n"
        if not pth.is_file() or pth.read_text() != line:
            pth.write_text(line)
        print(f"venv hook {name}: {target}")
    if "--check" in argv:
        run = subprocess.run([sys.executable, "-c", "import torchvision.transforms"], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"a fresh interpreter still cannot import torchvision:\n{run.stderr[-2000:]}", file=sys.stderr)
            return 1
        print("a fresh interpreter imports torchvision")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
