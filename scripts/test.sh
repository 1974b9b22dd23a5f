#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite: bash scripts/test.sh [--stack kilted] [pytest args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stack=${WALLX_STACK:-kilted}
if [ "${1:-}" = "--stack" ]; then stack=$2; shift 2; fi
bash scripts/setup.sh --stack "$stack"
# shellcheck disable=SC1091
source scripts/env.sh --stack "$stack"
echo "[test] stack $stack: $(python -c 'import sys, torch, lerobot; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, lerobot {lerobot.__version__}")' 2>/dev/null)"
start=$(date +%s)
set +e
python -m pytest "$@"
rc=$?
set -e
echo "[test] pytest exit code $rc after $(( $(date +%s) - start )) s"
# exit code 5 (no tests collected) is a failure too
exit "$rc"
