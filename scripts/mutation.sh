#!/usr/bin/env bash
# Mutation testing of one ROS-free core module against its fast tests (mutmut 2.5, one worker).
#   bash scripts/mutation.sh MODULE [--stack kilted|jazzy] [--fresh]
# MODULE: safety | chunk_execution | joint_trajectory_rules | stream_sync | frame_alignment (wallx_ros/core/MODULE.py)
# What it does:
#   * .venv-mutation: a tools venv with requirements/mutation.txt only (mutmut runs the tests with the stack's venv);
#   * copies the tree (wallx_ros, test, config, pytest.ini) to .cache/mutation/MODULE: mutmut edits the file it
#     mutates, so it never touches the working tree; its cache (.mutmut-cache) stays there, so a rerun after new
#     tests only retests the survivors (--fresh: start over);
#   * runs every mutant of the module with the module's tests (pytest -x, no hypothesis/anyio plugins), each run
#     forked from a server that has numpy and pytest imported (scripts/mutation_runner.py): a fresh pytest costs
#     5-13 s on a busy 2-core machine, a forked one well under that;
#   * writes bench/results/mutation_MODULE.md: killed / survived / timeout, the score without message mutants
#     (string literals with a space, or f-strings: the text of errors and logs) and every survivor's diff.
# Equivalent survivors are explained in bench/results/mutation.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
module=""
stack=${WALLX_STACK:-kilted}
fresh=false
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=$2; shift 2 ;;
    --fresh) fresh=true; shift ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) module=$1; shift ;;
  esac
done
case "$module" in
  safety) tests="test/test_safety.py test/test_safety_pins.py test/test_limit_sources.py test/test_policy_control.py" ;;
  chunk_execution) tests="test/test_chunk_execution.py test/test_chunk_execution_pins.py test/test_policy_control.py" ;;
  joint_trajectory_rules) tests="test/test_joint_trajectory_rules.py test/test_joint_trajectory_rules_pins.py" ;;
  stream_sync) tests="test/test_stream_sync.py test/test_stream_sync_pins.py" ;;
  frame_alignment) tests="test/test_frame_alignment.py test/test_frame_alignment_pins.py" ;;
  *) echo "mutation.sh: MODULE must be safety, chunk_execution, joint_trajectory_rules, stream_sync or frame_alignment" >&2
     exit 2 ;;
esac
tests=$(for t in $tests; do if [ -f "$t" ]; then printf '%s ' "$t"; fi; done)
# shellcheck disable=SC1091
source scripts/env.sh --stack "$stack" >/dev/null
stack_python=$(command -v python)
tools="$root/.venv-mutation"
if [ ! -x "$tools/bin/mutmut" ]; then
  echo "[mutation] creating $tools (requirements/mutation.txt)"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q -r requirements/mutation.txt
fi
work="$root/.cache/mutation/$module"
mkdir -p "$work"
if $fresh; then rm -f "$work/.mutmut-cache"; fi
for part in wallx_ros test config; do rm -rf "${work:?}/$part"; cp -r "$part" "$work/$part"; done
cp pytest.ini "$work/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
echo "[mutation] $module: wallx_ros/core/$module.py against $tests($stack)"
cd "$work"
# pytest once per mutant, forked from a server that imported numpy and pytest already (scripts/mutation_runner.py)
socket_path="$work/runner.sock"
rm -f "$socket_path"
PYTHONDONTWRITEBYTECODE=1 "$stack_python" "$root/scripts/mutation_runner.py" serve "$socket_path" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -S "$socket_path" ] && break; sleep 0.2; done   # importing numpy/pytest: seconds, loaded
if [ ! -S "$socket_path" ]; then echo "[mutation] the test runner did not start" >&2; exit 1; fi
runner="$stack_python $root/scripts/mutation_runner.py run $socket_path -- -x -q -p no:cacheprovider \
-p no:hypothesispytest -p no:anyio $tests"
start=$(date +%s)
# the baseline, run here: the tests must pass on the unmutated module. mutmut's timeout is 10x the baseline time it
# has cached: 60 s is recorded, so only a mutant that loops forever times out (the runner stops those at 180 s)
if ! $runner >/dev/null 2>&1; then
  echo "[mutation] the tests fail without any mutation: fix them first ($tests)" >&2
  exit 1
fi
"$tools/bin/python" -c 'import sqlite3
from mutmut.cache import hash_of_tests, set_cached_test_time
set_cached_test_time(60.0, hash_of_tests(["test"]))
with sqlite3.connect(".mutmut-cache") as db:  # a timeout may have been a loaded machine: test those again
    db.execute("UPDATE Mutant SET status = ? WHERE status = ?", ("untested", "bad_timeout"))'
# mutmut 2.5 times a slow test run out, restarts its worker and then reads the module while the mutant is still on
# disk (a traceback, then it waits forever). So: a long timeout (above), and a watchdog: when the cache records
# nothing for stall_s, mutmut is restarted from the untouched module (the cache keeps every result).
stall_s=${WALLX_MUTATION_STALL_S:-900}
for attempt in 1 2 3 4 5; do
  cp "$root/wallx_ros/core/$module.py" "wallx_ros/core/$module.py"
  "$tools/bin/mutmut" run --paths-to-mutate "wallx_ros/core/$module.py" --tests-dir test --runner "$runner" \
    --simple-output --no-progress &
  mutmut_pid=$!
  while kill -0 "$mutmut_pid" 2>/dev/null; do
    sleep 10
    idle=$(( $(date +%s) - $(stat -c %Y .mutmut-cache 2>/dev/null || date +%s) ))
    if [ "$idle" -gt "$stall_s" ]; then
      echo "[mutation] no progress for ${idle} s: restarting mutmut (attempt $attempt)"
      kill "$mutmut_pid" 2>/dev/null || true
      wait "$mutmut_pid" 2>/dev/null || true
    fi
  done
  wait "$mutmut_pid" 2>/dev/null && break   # 0: every mutant killed
  untested=$("$tools/bin/mutmut" result-ids untested 2>/dev/null | wc -w)
  [ "$untested" -eq 0 ] && break            # a bit mask of survivors/timeouts, but done
done
cp "$root/wallx_ros/core/$module.py" "wallx_ros/core/$module.py"
elapsed=$(( $(date +%s) - start ))
"$tools/bin/python" "$root/scripts/mutation_report.py" "$module" "$work" "$tools/bin/mutmut" "$elapsed" "$stack" \
  > "$root/bench/results/mutation_$module.md"
sed -n 1,12p "$root/bench/results/mutation_$module.md"
