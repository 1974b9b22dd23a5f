#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite on every supported stack, one after the other:
#   bash scripts/test.sh                         # kilted (LeRobot 0.4.4) AND jazzy (LeRobot 0.6.1): what CI runs
#   bash scripts/test.sh --stack jazzy [ARGS]    # one stack; ARGS go to pytest
#   bash scripts/test.sh --under-load [...]      # the same with two CPU-bound processes running beside it for the
#                                                # whole run (a busy 2-core CI machine): tests must wait on events
# Exit code: 0 only when every stack's suite passed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=stacks.sh
source scripts/stacks.sh
stacks=$WALLX_STACKS   # not $WALLX_STACK: a sourced env.sh must not silently narrow the suite
under_load=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stacks=${2:?--stack needs a name}; shift 2 ;;
    --stack=*) stacks=${1#--stack=}; shift ;;
    --under-load) under_load=1; shift ;;
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
for s in $stacks; do
  bash scripts/setup.sh --stack "$s"
  start=$(date +%s)
  set +e
  # a subshell per stack: env.sh activates that stack's venv
  (
    # shellcheck disable=SC1091
    source scripts/env.sh --stack "$s" || exit 1
    echo "[test] stack $s: $(python -c 'import sys, torch, lerobot, transformers; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, lerobot {lerobot.__version__}, transformers {transformers.__version__}")' 2>/dev/null)"
    python -m pytest "$@"
  )
  rc=$?
  set -e
  # exit code 5 (no tests collected) is a failure too
  load_note=""  # (not a `[ ... ] && echo` inside the assignment: its status 1 would end the script under set -e)
  if [ "$under_load" -eq 1 ]; then load_note=" (under load; load average $(cut -d' ' -f1-3 /proc/loadavg))"; fi
  summary+=("stack $s: pytest exit code $rc after $(( $(date +%s) - start )) s$load_note")
  echo "[test] ${summary[-1]}"
  [ "$rc" -eq 0 ] || status=1
done
printf '[test] %s\n' "${summary[@]}"
exit "$status"
