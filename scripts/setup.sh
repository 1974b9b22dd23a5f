#!/usr/bin/env bash
# One-time (idempotent, unattended) setup of a wallx_ros development venv.
#   bash scripts/setup.sh                 # default stack: ROS 2 Kilted wheels + LeRobot 0.4.4 + CPU torch (Python 3.11) -> .venv
#   bash scripts/setup.sh --stack kilted  # the same, explicitly
#   bash scripts/setup.sh --stack jazzy   # ROS 2 Jazzy (LTS) wheels + LeRobot 0.6.1 + torch 2.11 (Python 3.12) -> .venv-jazzy
#   bash scripts/setup.sh --stack all     # both
# Re-running is cheap: a venv is rebuilt only when requirements/<stack>.lock (or its interpreter) changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=stacks.sh
source scripts/stacks.sh
stack=${WALLX_STACK:-$WALLX_DEFAULT_STACK}
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=${2:?--stack needs a name}; shift 2 ;;
    --stack=*) stack=${1#--stack=}; shift ;;
    *) echo "setup.sh: unknown argument $1 (usage: setup.sh [--stack kilted|jazzy|all])" >&2; exit 2 ;;
  esac
done
if [ "$stack" = all ]; then
  for s in $WALLX_STACKS; do bash "$0" --stack "$s"; done
  exit 0
fi
# -qq: the machine's pip config lists local index folders that lack most packages; pip warns about
# each of them. Errors still print, and a failing install fails the script.
pip_install() { "$venv/bin/python" -m pip install -qq "$@"; }
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
size_of() { du -sh "$1" 2>/dev/null | cut -f1; }
quiet() { "$@" >/dev/null; }
# step WHAT CMD...: run CMD, then say how long it took and how big the venv is. A long CMD (pip) also gets a
# line every 20 s with the elapsed time and the venv's size so far, so a 4-minute install is never silent.
step() {
  local what=$1 t0=$SECONDS ticker rc=0
  shift
  log "$what ..."
  ( while sleep 20 </dev/null >/dev/null 2>&1; do log "  ... $what: $((SECONDS - t0)) s, venv $(size_of "$venv")"; done ) &
  ticker=$!
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  [ "$rc" -eq 0 ] || { log "FAILED: $what (exit code $rc after $((SECONDS - t0)) s)"; return "$rc"; }
  log "  done: $what in $((SECONDS - t0)) s (venv $(size_of "$venv"))"
}

wallx_stack "$stack" || { echo "setup.sh: unknown stack '$stack' (known: $WALLX_STACKS, all)" >&2; exit 2; }
venv=$_ws_venv
pyver=$_ws_pyver
lock="requirements/$stack.lock"

# 1. System libraries: FFmpeg (video datasets read back through torchcodec), OSMesa (headless MuJoCo).
need_apt=()
for pkg in ffmpeg libosmesa6; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    step "apt-get update" quiet apt-get update -qq
    step "apt-get install ${need_apt[*]}" quiet apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    log "WARNING: missing system packages ${need_apt[*]} (need root + apt-get): video read-back and sim rendering will not work"
  fi
fi

# 2. Interpreter: pyenv's build where python$pyver is not on PATH by name (jazzy: pyenv's 3.12.1).
py=$(wallx_stack_python "$pyver") \
  || { echo "setup.sh: python$pyver not found (install it, e.g. pyenv install $pyver)" >&2; exit 1; }

# 3. The venv, rebuilt from the lock when the lock (or the interpreter) changed.
want=$( (sha256sum "$lock" requirements/build-tools.txt; "$py" -VV) | sha256sum | cut -c1-16)
stamp="$venv/.wallx_ros_stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  log "$venv is up to date with $lock"
else
  log "building $venv from $lock ($(grep -c '==' "$lock") pinned packages) with $py$( [ "$stack" = jazzy ] \
    && echo ' (torch 2.11 CUDA build: ~2.2 GB download, ~6.4 GB venv)' || echo ' (~2.7 GB venv)')"
  rm -rf "$venv"
  step "create the venv" "$py" -m venv "$venv"
  step "install build tools (requirements/build-tools.txt)" pip_install -r requirements/build-tools.txt
  # --no-deps: the lock is the complete, resolved set (kilted: lerobot 0.4.4's own pins on torch cannot
  # co-resolve with the local CPU torch wheel; see requirements/$stack.in)
  step "install the locked set ($lock: ROS 2 wheels, torch, LeRobot)" pip_install --no-deps -r "$lock"
  step "check that rclpy, torch and lerobot import" "$venv/bin/python" -c "import rclpy, torch, lerobot" \
    || { echo "setup.sh: the venv does not import rclpy/torch/lerobot" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# 3b. Venv hooks (scripts/venv_hooks/): a plain `from lerobot.datasets.lerobot_dataset import LeRobotDataset`
#     works without importing wallx_ros first (kilted: CPU torch + PyPI torchvision). Idempotent, no network.
"$venv/bin/python" scripts/venv_hooks/install.py --check

# 4. This package, editable (tests import the checkout). setup.py changes (entry points) re-install.
pkg_want=$(cat setup.py setup.cfg package.xml | sha256sum | cut -c1-16)
pkg_stamp="$venv/.wallx_ros_pkg_stamp"
if [ ! -f "$pkg_stamp" ] || [ "$(cat "$pkg_stamp")" != "$pkg_want" ]; then
  step "install this package editable (pip install --no-deps -e .)" pip_install --no-deps --no-build-isolation -e .
  echo "$pkg_want" > "$pkg_stamp"
fi

# 5. The venv as an ament prefix for this package (an editable install registers nothing): the ament index
# marker, share/wallx_ros/{launch,config,msg,package.xml} linked to the checkout, lib/wallx_ros/<exe> launchers.
# Then `ros2 launch wallx_ros ...` / `ros2 run wallx_ros ...` work here once launch / ros2cli are installed.
# Cheap and idempotent: runs every time.
"$venv/bin/python" scripts/ament_prefix.py --prefix "$venv" --python "$venv/bin/python" | sed 's/^/[setup] /'

log "ready: source scripts/env.sh --stack $stack   ($(size_of "$venv") venv)"
