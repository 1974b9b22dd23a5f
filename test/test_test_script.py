"""scripts/test.sh's own control flow (what CI runs): every stack's suite runs, each gets its summary line, and the
exit code is 0 only when every stack passed.

The script is run for real with bash, in a copy of scripts/ where setup.sh does nothing and env.sh puts a stand-in
``python`` first on PATH (exit code per stack from WALLX_FAKE_RC_<stack>): the suites themselves are what the rest of
this test suite checks. A `[ ... ] && echo` inside the summary assignment once ended the script under `set -e`
after the first stack, with exit 1 and no jazzy run at all; these tests fail on that version.

By default the stacks' suites run side by side (CI time); the stand-in python of one stack can be told to wait for a
file the other stack's python writes (WALLX_FAKE_WAIT_<stack>), which only a side-by-side run gets past.
"""

from __future__ import annotations

import os
import re
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
touch "$WALLX_FAKE_BIN/ran-$_stack"
_other=\\${WALLX_FAKE_WAIT_$_stack:-}
if [ -n "\\$_other" ]; then
  for _ in \\$(seq 100); do [ -e "$WALLX_FAKE_BIN/ran-\\$_other" ] && break; sleep 0.1; done
  [ -e "$WALLX_FAKE_BIN/ran-\\$_other" ] || { echo "($_stack never saw the other stack run)"; exit 3; }
fi
if [ -n "\\${WALLX_FAKE_HANG_$_stack:-}" ] && [ -n "\\${WALLX_TEST_SESSION_END:-}" ]; then
  # a session that ended (its verdict written, as conftest.py does) in a process that never exits
  echo "\\${WALLX_FAKE_RC_$_stack:-0} \\$\\$" > "\\$WALLX_TEST_SESSION_END"
  exec sleep 600
fi
exit \\${WALLX_FAKE_RC_$_stack:-0}
EOF
chmod +x "$WALLX_FAKE_BIN/$_stack/python"
export PATH="$WALLX_FAKE_BIN/$_stack:$PATH"
"""


def _run(tmp_path: Path, *args: str, rc: dict[str, int] | None = None, wait: dict[str, str] | None = None,
         hang: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    scripts = tmp_path / "repo" / "scripts"
    scripts.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "test.sh", scripts / "test.sh")
    shutil.copy(REPO_ROOT / "scripts" / "stacks.sh", scripts / "stacks.sh")
    (scripts / "setup.sh").write_text("exit 0\n")
    (scripts / "env.sh").write_text(_FAKE_ENV)
    env = {**os.environ, "WALLX_FAKE_BIN": str(tmp_path / "bin")}
    env.update({f"WALLX_FAKE_RC_{stack}": str(code) for stack, code in (rc or {}).items()})
    env.update({f"WALLX_FAKE_WAIT_{stack}": other for stack, other in (wait or {}).items()})
    env.update({f"WALLX_FAKE_HANG_{stack}": "1" for stack in hang})
    env.update(extra_env or {})
    return subprocess.run(["bash", str(scripts / "test.sh"), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_every_stack_runs_and_a_pass_exits_zero(tmp_path: Path) -> None:
    run = _run(tmp_path, "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    for stack in ("kilted", "jazzy"):
        # each suite's lines carry its stack's name; pytest gets a cache of its own and the arguments given
        assert f"[{stack}] fake python ({stack}): -m pytest -o cache_dir=.pytest_cache/{stack} -q" in run.stdout, \
            run.stdout
        assert run.stdout.count(f"[test] stack {stack}: pytest exit code 0") == 2, run.stdout  # per stack + summary


def test_a_failing_stack_fails_the_run_and_the_other_stack_still_runs(tmp_path: Path) -> None:
    run = _run(tmp_path, rc={"kilted": 1})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[test] stack kilted: pytest exit code 1" in run.stdout
    assert "[test] stack jazzy: pytest exit code 0" in run.stdout, run.stdout
    run = _run(tmp_path / "other", rc={"jazzy": 4})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[test] stack kilted: pytest exit code 0" in run.stdout and "[test] stack jazzy: pytest exit code 4" \
        in run.stdout, run.stdout


def test_the_stacks_run_side_by_side_unless_serial(tmp_path: Path) -> None:
    # kilted's suite waits until jazzy's has started: one after the other, kilted would give up (exit 3)
    run = _run(tmp_path, wait={"kilted": "jazzy"})
    assert run.returncode == 0, run.stdout + run.stderr
    serial = _run(tmp_path / "serial", "--serial", wait={"kilted": "jazzy"})
    assert serial.returncode == 1, serial.stdout + serial.stderr
    assert "kilted never saw the other stack run" in serial.stdout
    assert "[test] stack kilted: pytest exit code 3" in serial.stdout
    assert "[test] stack jazzy: pytest exit code 0" in serial.stdout, serial.stdout


def test_a_suite_that_hangs_after_its_session_ended_is_killed_and_keeps_its_verdict(tmp_path: Path) -> None:
    # kilted's session passes and its process never exits; jazzy's fails and exits: the run ends (CI once waited
    # its 90 minutes here), with kilted's own verdict and a line saying what happened
    run = _run(tmp_path, rc={"jazzy": 1}, hang=("kilted",), extra_env={"WALLX_TEST_EXIT_GRACE_S": "2"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[test] stack kilted: pytest exit code 0" in run.stdout, run.stdout
    assert "[test] stack jazzy: pytest exit code 1" in run.stdout, run.stdout
    killed = re.search(r"\[kilted\] \[test\] pytest \(pid (\d+)\) finished its session with exit status 0 2 s ago "
                       r"but its process has not ended .*: killed", run.stdout)
    assert killed, run.stdout
    assert not Path(f"/proc/{killed.group(1)}").exists(), "the hung process is still there"
    # a run where it hangs with a failing verdict fails
    run = _run(tmp_path / "failing", rc={"kilted": 2}, hang=("kilted",), extra_env={"WALLX_TEST_EXIT_GRACE_S": "2"})
    assert run.returncode == 1 and "[test] stack kilted: pytest exit code 2" in run.stdout, run.stdout
