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
    log "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
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
  log "building $venv from $lock with $py$( [ "$stack" = jazzy ] && echo ' (torch 2.11 CUDA build: ~2.2 GB download, ~5.5 GB venv)')"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  pip_install -r requirements/build-tools.txt
  # --no-deps: the lock is the complete, resolved set (kilted: lerobot 0.4.4's own pins on torch cannot
  # co-resolve with the local CPU torch wheel; see requirements/$stack.in)
  pip_install --no-deps -r "$lock"
  "$venv/bin/python" -c "import rclpy, torch, lerobot" \
    || { echo "setup.sh: the venv does not import rclpy/torch/lerobot" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# 4. This package, editable (tests import the checkout). setup.py changes (entry points) re-install.
pkg_want=$(cat setup.py setup.cfg package.xml | sha256sum | cut -c1-16)
pkg_stamp="$venv/.wallx_ros_pkg_stamp"
if [ ! -f "$pkg_stamp" ] || [ "$(cat "$pkg_stamp")" != "$pkg_want" ]; then
  log "pip install --no-deps -e ."
  pip_install --no-deps --no-build-isolation -e .
  echo "$pkg_want" > "$pkg_stamp"
fi
log "ready: source scripts/env.sh --stack $stack   ($(du -sh "$venv" | cut -f1) venv)"
