# The supported software stacks, in one place (sourced by setup.sh, lock.sh, test.sh and env.sh).
#   kilted  ROS 2 Kilted wheels + LeRobot 0.4.4 (WALL-OSS's own pin) + CPU torch 2.13, Python 3.11  (default)
#   jazzy   ROS 2 Jazzy (LTS) wheels + LeRobot 0.6.1 + torch 2.11 (PyPI CUDA build, runs on CPU), Python 3.12
# wallx_stack NAME sets: _ws_venv (relative to the repo), _ws_pyver, _ws_lerobot (what lock.sh installs
# with --no-deps after the .in file, empty when the .in resolves on its own), _ws_dds_profile_var (the variable
# the stack's Fast DDS reads its XML profile from: Fast DDS 3 (Kilted) FASTDDS_..., Fast DDS 2 (Jazzy)
# FASTRTPS_...; Kilted also reads the old name, with a deprecation warning per process). Returns 1 for an
# unknown name.
WALLX_STACKS="kilted jazzy"
WALLX_DEFAULT_STACK=kilted

wallx_stack() {
  case "$1" in
    kilted) _ws_venv=.venv; _ws_pyver=3.11; _ws_lerobot="lerobot==0.4.4"
            _ws_dds_profile_var=FASTDDS_DEFAULT_PROFILES_FILE ;;
    jazzy) _ws_venv=.venv-jazzy; _ws_pyver=3.12; _ws_lerobot=""
           _ws_dds_profile_var=FASTRTPS_DEFAULT_PROFILES_FILE ;;
    *) return 1 ;;
  esac
}

# The interpreter of a stack: python3.X on PATH if it runs (a pyenv shim for a version that is not
# selected does not), else the newest pyenv build of it.
wallx_stack_python() {
  local py
  py=$(command -v "python$1" || true)
  if [ -z "$py" ] || ! "$py" -c "" >/dev/null 2>&1; then
    py=$(ls -d "$HOME"/.pyenv/versions/"$1".*/bin/python"$1" 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  [ -n "$py" ] || return 1
  printf '%s\n' "$py"
}
