# Source this file (bash/zsh) to use a wallx_ros venv: `source scripts/env.sh [--stack kilted|jazzy]`.
# It activates the venv that scripts/setup.sh built for that stack (kilted: .venv, jazzy: .venv-jazzy;
# default $WALLX_STACK, else kilted) and sets the environment every wallx_ros process needs. Sourcing it
# again with another stack switches cleanly. DDS discovery is pinned to loopback: this project never
# sends traffic to another address unless the user deliberately overrides ROS_AUTOMATIC_DISCOVERY_RANGE
# for a multi-host setup.
_wallx_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
# shellcheck source=stacks.sh
. "$_wallx_root/scripts/stacks.sh"
_wallx_stack=${WALLX_STACK:-$WALLX_DEFAULT_STACK}
case "${1:-}" in
  --stack) [ -n "${2:-}" ] && _wallx_stack=$2 ;;
  --stack=*) _wallx_stack=${1#--stack=} ;;
esac
if ! wallx_stack "$_wallx_stack"; then
  echo "wallx_ros: unknown stack '$_wallx_stack' (known: $WALLX_STACKS)" >&2
  unset _wallx_root _wallx_stack
  return 2 2>/dev/null || exit 2
fi
_wallx_venv="$_wallx_root/$_ws_venv"
if [ ! -x "$_wallx_venv/bin/python" ]; then
  echo "wallx_ros: no venv at $_wallx_venv - run: bash scripts/setup.sh --stack $_wallx_stack" >&2
  unset _wallx_root _wallx_stack _wallx_venv
  return 1 2>/dev/null || exit 1
fi
# leave a previously activated venv (e.g. the other stack) and drop its AMENT_PREFIX_PATH entry
# (only a sourced venv's shell function: `deactivate` on PATH may be another tool's, e.g. pyenv-virtualenv's)
if [ -n "${VIRTUAL_ENV:-}" ] && typeset -f deactivate >/dev/null 2>&1; then deactivate; fi
# ... and its ROS libraries: the ROS wheels' bootstrapper re-executes python with LD_LIBRARY_PATH set and
# marks that with _ROS_WHEELS_BOOTSTRAP_COMPLETE; both must go, or the new venv's rclpy finds no libraries
_wallx_ament=""
_wallx_ld=""
_wallx_ifs=$IFS; IFS=:
for _wallx_p in ${AMENT_PREFIX_PATH:-}; do
  case "$_wallx_p" in "$_wallx_root"/.venv|"$_wallx_root"/.venv-*|"") ;; *) _wallx_ament="$_wallx_ament${_wallx_ament:+:}$_wallx_p" ;; esac
done
for _wallx_p in ${LD_LIBRARY_PATH:-}; do
  case "$_wallx_p" in "$_wallx_root"/.venv/*|"$_wallx_root"/.venv-*|"") ;; *) _wallx_ld="$_wallx_ld${_wallx_ld:+:}$_wallx_p" ;; esac
done
_wallx_path=""
for _wallx_p in $PATH; do  # bin/ and lib/wallx_ros of an inherited (not sourced) venv of this checkout
  case "$_wallx_p" in "$_wallx_root"/.venv/*|"$_wallx_root"/.venv-*|"") ;; *) _wallx_path="$_wallx_path${_wallx_path:+:}$_wallx_p" ;; esac
done
PATH=$_wallx_path
IFS=$_wallx_ifs
if [ -n "$_wallx_ld" ]; then export LD_LIBRARY_PATH="$_wallx_ld"; else unset LD_LIBRARY_PATH; fi
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
# shellcheck disable=SC1091
. "$_wallx_venv/bin/activate"
export WALLX_STACK="$_wallx_stack"
# the editable install puts the console scripts where setup.cfg says ROS executables live (lib/wallx_ros)
case ":$PATH:" in *":$_wallx_venv/lib/wallx_ros:"*) ;; *) export PATH="$_wallx_venv/lib/wallx_ros:$PATH" ;; esac
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST          # never discover beyond loopback (Jazzy and Kilted)
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-42}
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# large-frame Fast DDS profile: 16 MB shared-memory segments + UDPv4 on 127.0.0.1 only, in the one variable
# this stack's Fast DDS reads (kilted: FASTDDS_..., jazzy: FASTRTPS_...; Kilted warns in every process when
# the old name is set, so the other one is unset)
unset FASTDDS_DEFAULT_PROFILES_FILE FASTRTPS_DEFAULT_PROFILES_FILE
export "$_ws_dds_profile_var=$_wallx_root/config/fastdds_loopback.xml"
export AMENT_PREFIX_PATH="$_wallx_venv${_wallx_ament:+:$_wallx_ament}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HOME=${HF_HOME:-$_wallx_root/.cache/huggingface}
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
unset _wallx_root _wallx_stack _wallx_venv _wallx_ament _wallx_ld _wallx_path _wallx_ifs _wallx_p _ws_venv _ws_pyver _ws_lerobot \
  _ws_dds_profile_var
unset -f wallx_stack wallx_stack_python
