#!/usr/bin/env bash
# The main job: set up (idempotently) and run the WALL-OSS policy node on the embedded default.
#   bash scripts/demo.sh                       # tiny offline test checkpoint (random weights)
#   bash scripts/demo.sh --checkpoint DIR      # a real LeRobot wall_x policy folder
#   bash scripts/demo.sh --stack jazzy         # on the ROS 2 Jazzy + LeRobot 0.6.1 stack (default: kilted)
# Extra arguments after -- go to the node (e.g. -- -p device:=cuda).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
checkpoint=""
stack=${WALLX_STACK:-kilted}
node_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoint) checkpoint=$2; shift 2 ;;
    --stack) stack=$2; shift 2 ;;
    --) shift; node_args=("$@"); break ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh --stack "$stack"
# shellcheck disable=SC1091
source scripts/env.sh --stack "$stack"
extra=()
if [ -z "$checkpoint" ]; then
  checkpoint="$root/.cache/checkpoints/tiny_diffusion_$stack"  # each LeRobot line writes its own layout
  if [ ! -f "$checkpoint/model.safetensors" ]; then
    wallx-ros-make-test-checkpoint "$checkpoint"
  fi
  extra=(-p allow_random_weights:=true)
fi
echo "[demo] policy node on $checkpoint (ROS_DOMAIN_ID=$ROS_DOMAIN_ID, discovery: $ROS_AUTOMATIC_DISCOVERY_RANGE)"
exec python -m wallx_ros.nodes.policy_node --ros-args \
  --params-file "$root/config/policy.yaml" -p checkpoint_dir:="$checkpoint" "${extra[@]}" "${node_args[@]}"
