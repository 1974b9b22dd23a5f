#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite on every supported stack:
#   bash scripts/test.sh                         # kilted (LeRobot 0.4.4) AND jazzy (LeRobot 0.6.1), side by side:
#                                                # what CI runs (each suite keeps about one core busy; together they
#                                                # load a 2-core machine the way CI does, and take ~half the time)
#   bash scripts/test.sh --serial [...]          # the stacks one after the other (quieter logs, slower)
#   bash scripts/test.sh --stack jazzy [ARGS]    # one stack; ARGS go to pytest
#   bash scripts/test.sh --under-load [...]      # the same with two CPU-bound processes running beside it for the
#                                                # whole run (a busy 2-core CI machine): tests must wait on events
# Side by side, every line a suite prints starts with its stack's name ("[kilted] ...").
# Exit code: 0 only when every stack's suite passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=stacks.sh
source scripts/stacks.sh
stacks=$WALLX_STACKS   # not $WALLX_STACK: a sourced env.sh must not silently narrow the suite
under_load=0
serial=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stacks=${2:?--stack needs a name}; shift 2 ;;
    --stack=*) stacks=${1#--stack=}; shift ;;
    --under-load) under_load=1; shift ;;
    --serial) serial=1; shift ;;
    *) break ;;  # the rest goes to pytest
  esac
done
[ "$stacks" = all ] && stacks=$WALLX_STACKS
for s in $stacks; do
  wallx_stack "$s" || { echo "test.sh: unknown stack '$s' (known: $WALLX_STACKS, all)" >&2; exit 2; }
done

summary=()
status=0
if [ "$under_load" -eq 1 ]; then
  # two busy loops for the whole run, stopped however the script ends
  load_pids=()
  for _ in 1 2; do
    bash -c 'while :; do :; done' &
    load_pids+=($!)
  done
  trap 'kill "${load_pids[@]}" 2>/dev/null' EXIT
  echo "[test] under load: two CPU-bound processes (pids ${load_pids[*]}) run beside the suite"
fi

exit_grace_s=${WALLX_TEST_EXIT_GRACE_S:-180}  # from the end of a pytest session to the end of its process

watch_exit() {  # $1: the file a finished session writes ("<exit status> <pid>", test/conftest.py)
  # A process that hangs at exit after its session has finished (a thread the interpreter joins, a DDS
  # destructor) would hold CI until its time limit: it is killed $exit_grace_s s after the session ended.
  local file=$1 waited=0 status pid
  while [ ! -s "$file" ]; do sleep 1; done
  read -r status pid <"$file"
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge "$exit_grace_s" ]; then
      echo "[test] pytest (pid $pid) finished its session with exit status $status ${exit_grace_s} s ago but its" \
        "process has not ended (a hang at interpreter exit): killed. Its threads, as gdb sees them:"
      if command -v gdb >/dev/null; then
        timeout 120 gdb -p "$pid" -batch -ex "thread apply 1 bt 60" -ex "thread apply all bt 25" </dev/null 2>&1 | grep -E '^(Thread|#)' | head -600
      else
        echo "[test] (gdb is not installed: no native stacks)"
      fi
      touch "$file.killed"
      kill -KILL "$pid" 2>/dev/null
      return
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

run_suite() {  # $1: stack; the rest goes to pytest. A subshell: env.sh activates that stack's venv
  local s=$1
  shift
  (
    # shellcheck disable=SC1091
    source scripts/env.sh --stack "$s" || exit 1
    echo "[test] stack $s: $(python -c 'import sys, torch, lerobot, transformers; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, lerobot {lerobot.__version__}, transformers {transformers.__version__}")' 2>/dev/null)"
    session_end=$(mktemp)
    export WALLX_TEST_SESSION_END=$session_end
    watch_exit "$session_end" &
    watcher=$!
    set +e
    # a cache per stack: two suites side by side must not write one file
    python -m pytest -o "cache_dir=.pytest_cache/$s" "$@"
    rc=$?
    set -e
    kill "$watcher" 2>/dev/null || true  # (gone already when it killed a hung pytest)
    if [ -e "$session_end.killed" ]; then read -r rc _ <"$session_end"; fi  # the session's own verdict
    rm -f "$session_end" "$session_end.killed"
    exit "$rc"
  )
}

note() {  # the summary line of one stack's run: $1 stack, $2 exit code, $3 seconds
  local load_note=""  # (not a `[ ... ] && echo` inside the assignment: its status 1 would end the script under set -e)
  if [ "$under_load" -eq 1 ]; then load_note=" (under load; load average $(cut -d' ' -f1-3 /proc/loadavg))"; fi
  summary+=("stack $1: pytest exit code $2 after $3 s$load_note")
  echo "[test] ${summary[-1]}"
  # exit code 5 (no tests collected) is a failure too
  [ "$2" -eq 0 ] || status=1
}

for s in $stacks; do
  bash scripts/setup.sh --stack "$s"
done
n_stacks=$(wc -w <<<"$stacks")
if [ "$serial" -eq 1 ] || [ "$n_stacks" -eq 1 ]; then
  for s in $stacks; do
    start=$(date +%s)
    set +e
    run_suite "$s" "$@"
    rc=$?
    set -e
    note "$s" "$rc" "$(( $(date +%s) - start ))"
  done
else
  results=$(mktemp -d)
  pids=()
  for s in $stacks; do
    (
      start=$(date +%s)
      set +e
      run_suite "$s" "$@" 2>&1 | sed -u "s/^/[$s] /"
      echo "${PIPESTATUS[0]} $(( $(date +%s) - start ))" >"$results/$s"
    ) &
    pids+=($!)
  done
  # (Ctrl-C in a terminal reaches both suites: they are in this script's process group)
  wait "${pids[@]}" || true
  for s in $stacks; do
    if [ -s "$results/$s" ]; then
      read -r rc secs <"$results/$s"
    else
      rc=1 secs="?"
    fi
    note "$s" "$rc" "$secs"
  done
  rm -rf "$results"
fi
printf '[test] %s\n' "${summary[@]}"
exit "$status"
