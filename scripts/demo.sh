#!/usr/bin/env bash
# The main job in one command: set up (idempotently), then run the embedded MuJoCo simulation (gym-aloha
# ALOHA insertion scene) and the WALL-OSS policy node in closed loop, on sim time, until Ctrl-C.
#   bash scripts/demo.sh                          # tiny offline test checkpoint (random weights: it moves, solves nothing)
#   bash scripts/demo.sh --checkpoint DIR         # a real LeRobot wall_x policy folder (add --device cuda)
#   bash scripts/demo.sh --record                 # teleop + record variant (needs the recorder/teleop nodes)
# Options:
#   --stack S                  kilted (default: ROS 2 Kilted + LeRobot 0.4.4) or jazzy (ROS 2 Jazzy + LeRobot 0.6.1)
#   --device D                 policy device (cpu | cuda | cuda:N | auto), default cpu
#   --real-time-factor X       sim seconds per wall second; default 0.05 on cpu (a CPU chunk takes 1-5 s), 1.0 otherwise
#   --duration S               stop by itself after S wall seconds (default: run until Ctrl-C)
#   --out DIR                  run log, node logs and plots go here (default .cache/demo/<date-time>)
#   --sim-param NAME:=VALUE    extra sim_node parameter (repeatable), e.g. --sim-param camera_rate_hz:=20
#   --no-setup                 skip scripts/setup.sh (the venv exists already)
#   -- ARGS...                 extra arguments for the policy node, e.g. -- -p instruction:="insert the peg"
# Ctrl-C (SIGINT) stops both nodes cleanly; then the run is plotted (latency histograms, predicted vs executed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
checkpoint=""
device="cpu"
stack=${WALLX_STACK:-kilted}
rtf=""
duration=""
out=""
record=false
setup=true
sim_args=()
policy_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoint) checkpoint=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --stack) stack=$2; shift 2 ;;
    --real-time-factor) rtf=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --sim-param) sim_args+=(-p "$2"); shift 2 ;;
    --record) record=true; shift ;;
    --no-setup) setup=false; shift ;;
    --) shift; policy_args=("$@"); break ;;
    *) echo "demo.sh: unknown argument $1 (see the header of scripts/demo.sh)" >&2; exit 2 ;;
  esac
done
if $record; then
  echo "demo.sh: the teleop + record variant needs the recorder and teleop nodes (not in this checkout yet)" >&2
  exit 2
fi
if $setup; then bash scripts/setup.sh --stack "$stack"; fi
# shellcheck disable=SC1091
source scripts/env.sh --stack "$stack"
out=${out:-$root/.cache/demo/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
extra=()
if [ -z "$checkpoint" ]; then
  checkpoint="$root/.cache/checkpoints/tiny_diffusion_$stack"  # each LeRobot line writes its own layout
  if [ ! -f "$checkpoint/model.safetensors" ]; then
    python -m wallx_ros.cli.make_test_checkpoint "$checkpoint"
  fi
  extra=(-p allow_random_weights:=true)
fi
if [ "$device" = cpu ]; then
  rtf=${rtf:-0.05}
  extra+=(-p num_threads:=1)   # the simulator needs the other core
else
  rtf=${rtf:-1.0}
fi
# the policy's topic set for the embedded simulator: one source of truth, config/topics_embedded.yaml
mapfile -t remaps < <(python -c '
import sys, yaml
for src, dst in (yaml.safe_load(open(sys.argv[1]))["remappings"] or {}).items():
    print("-r"); print(f"{src}:={dst}")' "$root/config/topics_embedded.yaml")

echo "[demo] sim + policy on $checkpoint ($device), real-time factor $rtf, output in $out"
echo "[demo] ROS_DOMAIN_ID=$ROS_DOMAIN_ID, discovery $ROS_AUTOMATIC_DISCOVERY_RANGE; Ctrl-C stops"
python -m wallx_ros.nodes.sim_node --ros-args --params-file "$root/config/sim.yaml" \
  -p real_time_factor:="$rtf" -p run_log:="$out/run.jsonl" -p log_status:=true ${sim_args[@]+"${sim_args[@]}"} \
  > >(tee "$out/sim.log") 2>&1 &
sim_pid=$!
python -m wallx_ros.nodes.policy_node --ros-args --params-file "$root/config/policy.yaml" \
  -p checkpoint_dir:="$checkpoint" -p device:="$device" -p use_sim_time:=true "${extra[@]}" "${remaps[@]}" \
  ${policy_args[@]+"${policy_args[@]}"} > >(tee "$out/policy.log") 2>&1 &
policy_pid=$!

stopping=false
stop_all() {  # SIGINT both nodes (a clean ROS shutdown), SIGKILL what is still alive after 20 s
  $stopping && return
  stopping=true
  echo "[demo] stopping"
  kill -INT "$policy_pid" "$sim_pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$policy_pid" 2>/dev/null || kill -0 "$sim_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$policy_pid" "$sim_pid" 2>/dev/null || true
}
trap stop_all INT TERM
if [ -n "$duration" ]; then
  ( sleep "$duration"; kill -INT $$ 2>/dev/null ) &
  timer_pid=$!
fi
# wait until one node exits or we are interrupted
while ! $stopping && kill -0 "$sim_pid" 2>/dev/null && kill -0 "$policy_pid" 2>/dev/null; do
  wait -n "$sim_pid" "$policy_pid" 2>/dev/null || true
done
crashed=false
if ! $stopping; then
  echo "[demo] a node exited on its own (see $out/*.log)" >&2
  crashed=true
fi
stop_all
sim_rc=0; policy_rc=0
wait "$sim_pid" 2>/dev/null || sim_rc=$?
wait "$policy_pid" 2>/dev/null || policy_rc=$?
if [ -n "${timer_pid:-}" ]; then kill "$timer_pid" 2>/dev/null || true; fi
echo "[demo] sim_node exited with $sim_rc, policy_node with $policy_rc"
if [ -s "$out/run.jsonl" ]; then
  python -m wallx_ros.cli.plot_run "$out/run.jsonl" -o "$out/plots" || true
fi
if $crashed || [ "$sim_rc" -ne 0 ] || [ "$policy_rc" -ne 0 ]; then exit 1; fi
exit 0
