# Source this file (bash/zsh) to use the wallx_ros venv: `source scripts/env.sh [--stack kilted]`.
# It activates the venv that scripts/setup.sh built and sets the environment every wallx_ros process
# needs. DDS discovery is pinned to loopback: this project never sends traffic to another address
# unless the user deliberately overrides ROS_AUTOMATIC_DISCOVERY_RANGE for a multi-host setup.
_wallx_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_wallx_stack=${WALLX_STACK:-kilted}
if [ "${1:-}" = "--stack" ] && [ -n "${2:-}" ]; then _wallx_stack=$2; fi
case "$_wallx_stack" in
  kilted) _wallx_venv="$_wallx_root/.venv" ;;
  *) _wallx_venv="$_wallx_root/.venv-$_wallx_stack" ;;
esac
if [ ! -x "$_wallx_venv/bin/python" ]; then
  echo "wallx_ros: no venv at $_wallx_venv - run: bash scripts/setup.sh --stack $_wallx_stack" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_wallx_venv/bin/activate"
export WALLX_STACK="$_wallx_stack"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST          # never discover beyond loopback
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-42}
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# large-frame Fast DDS profile: 16 MB shared-memory segments + UDPv4 on 127.0.0.1 only
export FASTDDS_DEFAULT_PROFILES_FILE="$_wallx_root/config/fastdds_loopback.xml"
export FASTRTPS_DEFAULT_PROFILES_FILE="$FASTDDS_DEFAULT_PROFILES_FILE"   # jazzy (Fast DDS 2) name
export AMENT_PREFIX_PATH="$_wallx_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HOME=${HF_HOME:-$_wallx_root/.cache/huggingface}
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
unset _wallx_root _wallx_stack _wallx_venv
