#!/usr/bin/env bash
# One-time (idempotent, unattended) setup of a wallx_ros development venv.
#   bash scripts/setup.sh                 # default stack: ROS 2 Kilted wheels + LeRobot 0.4.4 + CPU torch (Python 3.11)
#   bash scripts/setup.sh --stack kilted  # the same, explicitly
# Re-running is cheap: the venv is rebuilt only when requirements/<stack>.lock changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stack=${WALLX_STACK:-kilted}
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=$2; shift 2 ;;
    --stack=*) stack=${1#--stack=}; shift ;;
    *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
# -qq: the machine's pip config lists local index folders that lack most packages; pip warns about
# each of them. Errors still print, and a failing install fails the script.
pip_install() { "$venv/bin/python" -m pip install -qq "$@"; }
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

case "$stack" in
  kilted) venv=.venv; pyver=3.11 ;;
  *) echo "setup.sh: unknown stack '$stack' (known: kilted)" >&2; exit 2 ;;
esac
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

# 2. Interpreter: pyenv's build where python$pyver is not on PATH by name.
py=$(command -v "python$pyver" || true)
if [ -z "$py" ]; then
  py=$(ls -d "$HOME"/.pyenv/versions/"$pyver".*/bin/python"$pyver" 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$py" ] || { echo "setup.sh: python$pyver not found (install it or pyenv install $pyver)" >&2; exit 1; }

# 3. The venv, rebuilt from the lock when the lock (or the interpreter) changed.
want=$( (sha256sum "$lock" requirements/build-tools.txt; "$py" -VV) | sha256sum | cut -c1-16)
stamp="$venv/.wallx_ros_stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  log "$venv is up to date with $lock"
else
  log "building $venv from $lock with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  pip_install -r requirements/build-tools.txt
  # --no-deps: the lock is the complete, resolved set (lerobot's own pins on torch cannot co-resolve
  # with the local CPU torch wheel; see requirements/$stack.in)
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
