"""scripts/test.sh's own control flow (what CI runs): every stack's suite runs, each gets its summary line, and the
exit code is 0 only when every stack passed.

The script is run for real with bash, in a copy of scripts/ where setup.sh does nothing and env.sh puts a stand-in
``python`` first on PATH (exit code per stack from WALLX_FAKE_RC_<stack>): the suites themselves are what the rest of
this test suite checks. A `[ ... ] && echo` inside the summary assignment once ended the script under `set -e`
after the first stack, with exit 1 and no jazzy run at all; these tests fail on that version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ros_harness import REPO_ROOT

_FAKE_ENV = """# stand-in for scripts/env.sh: a python that reports its stack and exits with WALLX_FAKE_RC_<stack>
_stack=${2:-kilted}
mkdir -p "$WALLX_FAKE_BIN/$_stack"
cat > "$WALLX_FAKE_BIN/$_stack/python" <<EOF
#!/usr/bin/env bash
echo "fake python ($_stack): \\$*"
exit \\${WALLX_FAKE_RC_$_stack:-0}
EOF
chmod +x "$WALLX_FAKE_BIN/$_stack/python"
export PATH="$WALLX_FAKE_BIN/$_stack:$PATH"
"""


def _run(tmp_path: Path, *args: str, rc: dict[str, int] | None = None) -> subprocess.CompletedProcess[str]:
    scripts = tmp_path / "repo" / "scripts"
    scripts.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "test.sh", scripts / "test.sh")
    shutil.copy(REPO_ROOT / "scripts" / "stacks.sh", scripts / "stacks.sh")
    (scripts / "setup.sh").write_text("exit 0\n")
    (scripts / "env.sh").write_text(_FAKE_ENV)
    env = {**os.environ, "WALLX_FAKE_BIN": str(tmp_path / "bin")}
    env.update({f"WALLX_FAKE_RC_{stack}": str(code) for stack, code in (rc or {}).items()})
    return subprocess.run(["bash", str(scripts / "test.sh"), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_every_stack_runs_and_a_pass_exits_zero(tmp_path: Path) -> None:
    run = _run(tmp_path, "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fake python (kilted): -m pytest -q" in run.stdout and "fake python (jazzy): -m pytest -q" in run.stdout
    assert run.stdout.count("[test] stack kilted: pytest exit code 0") == 2, run.stdout  # per stack + summary
    assert run.stdout.count("[test] stack jazzy: pytest exit code 0") == 2, run.stdout


def test_a_failing_stack_fails_the_run_and_the_other_stack_still_runs(tmp_path: Path) -> None:
    run = _run(tmp_path, rc={"kilted": 1})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[test] stack kilted: pytest exit code 1" in run.stdout
    assert "[test] stack jazzy: pytest exit code 0" in run.stdout, run.stdout

