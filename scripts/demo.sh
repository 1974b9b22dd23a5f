#!/usr/bin/env bash
# The main job in one command: set up (idempotently), then run the embedded MuJoCo simulation (gym-aloha
# ALOHA insertion scene) and the WALL-OSS policy node in closed loop, on sim time, until Ctrl-C.
#   bash scripts/demo.sh                          # the tiny WallX trained by --learn (models/transfer_cube_tiny) on transfer-cube
#   bash scripts/demo.sh --checkpoint DIR         # a real LeRobot wall_x policy folder (add --device cuda)
#   bash scripts/demo.sh --record                 # teleop + record variant: sim + teleop_node + recorder_node -> a LeRobot v3 dataset
#   bash scripts/demo.sh --learn                  # the whole loop: scripted demonstrations -> dataset -> training -> closed loop
# Options:
#   --stack S                  kilted (default: ROS 2 Kilted + LeRobot 0.4.4) or jazzy (ROS 2 Jazzy + LeRobot 0.6.1)
#   --device D                 policy device (cpu | cuda | cuda:N | auto), default cpu
#   --real-time-factor X       sim seconds per wall second; default 0.05 on cpu (a CPU chunk takes 1-5 s), 1.0 otherwise
#   --duration S               stop by itself after S wall seconds (default: run until Ctrl-C)
#   --out DIR                  run log, node logs and plots go here (default .cache/demo/<date-time>)
#   --sim-param NAME:=VALUE    extra sim_node parameter (repeatable), e.g. --sim-param camera_rate_hz:=20
#   --no-setup                 skip scripts/setup.sh (the venv exists already)
#   -- ARGS...                 extra arguments for the policy node (with --record: the recorder node),
#                              e.g. -- -p instruction:="insert the peg"
# Ctrl-C (SIGINT) stops both nodes cleanly; then the run is plotted (latency histograms, predicted vs executed).
# Record variant (--record): no policy; the sim runs at real time (--real-time-factor to change) and the teleop node
# (keyboard in this terminal by default) drives the arms while the recorder writes every episode, on sim time:
#   --teleop MODE              keyboard (SPACE arms, [ ] pick a joint, w/s move it) | joy (sensor_msgs/Joy on /joy)
#                              | leader (mirror /leader/joint_states; dead-man /wallx_teleop/deadman std_msgs/Bool)
#   --dataset DIR              dataset folder, appended to when it exists (default <out>/dataset)
#   --repo-id ID               LeRobot repo_id (default local/wallx_sim_demos)
#   --instruction TEXT         task of the episodes (default "insert the peg into the socket")
#   --episode-s S              save an episode every S sim seconds and start the next (default 30; 0: one episode)
#   --fps N                    dataset fps = the sim's camera rate (default 10)
#   --teleop-param NAME:=VALUE extra teleop_node parameter (repeatable), e.g. --teleop-param max_velocity:=[0.8]
# Ctrl-C saves the open episode and finalizes the dataset (load it with LeRobotDataset(repo_id, root=DIR)).
# Learn variant (--learn): wallx-ros-learn-demo (wallx_ros/cli/learn_demo.py) in --out (default .cache/learn/<stack>):
# record (expert_node -> teleop_node -> recorder_node), train (wallx-ros-train, bounded steps), eval (policy_node in closed
# loop, evaluator_node scores it). Each stage resumes where it stopped; arguments after -- go to it, e.g. -- --episodes 10.
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
learn=false
setup=true
sim_args=()
policy_args=()
teleop_mode="keyboard"
dataset=""
repo_id="local/wallx_sim_demos"
instruction="insert the peg into the socket"
episode_s=30
fps=10
teleop_args=()
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
    --learn) learn=true; shift ;;
    --teleop) teleop_mode=$2; shift 2 ;;
    --dataset) dataset=$2; shift 2 ;;
    --repo-id) repo_id=$2; shift 2 ;;
    --instruction) instruction=$2; shift 2 ;;
    --episode-s) episode_s=$2; shift 2 ;;
    --fps) fps=$2; shift 2 ;;
    --teleop-param) teleop_args+=(-p "$2"); shift 2 ;;
    --no-setup) setup=false; shift ;;
    --) shift; policy_args=("$@"); break ;;
    *) echo "demo.sh: unknown argument $1 (see the header of scripts/demo.sh)" >&2; exit 2 ;;
  esac
done
if $record; then
  case "$teleop_mode" in
    keyboard) if [ ! -t 0 ]; then
                echo "demo.sh: --teleop keyboard needs a terminal on stdin (or use --teleop joy | leader)" >&2; exit 2
              fi ;;
    joy|leader) ;;
    *) echo "demo.sh: --teleop must be keyboard, joy or leader, got $teleop_mode" >&2; exit 2 ;;
  esac
fi
if $setup; then bash scripts/setup.sh --stack "$stack"; fi
# shellcheck disable=SC1091
source scripts/env.sh --stack "$stack"
if $learn; then
  exec python -m wallx_ros.cli.learn_demo --work "${out:-$root/.cache/learn/$stack}" ${policy_args[@]+"${policy_args[@]}"}
fi
out=${out:-$root/.cache/demo/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
# a node's output to the terminal and a log file; tee ignores Ctrl-C (the terminal sends it to every process of
# the group), so the nodes' last lines (the recorder saving the open episode) still reach both
log_to() { trap '' INT; exec tee "$1"; }
names=()   # node of each pid, for the messages
pids=()
if $record; then
  # --- teleop + record variant: sim + teleop_node + recorder_node, all on sim time --------------------------
  rtf=${rtf:-1.0}
  dataset=${dataset:-$out/dataset}
  joints=$(python -c 'from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS; print("[" + ", ".join(ALOHA_JOINTS) + "]")')
  # ROS parameters are typed: doubles must look like doubles. A frame may take a sample up to 1.5 camera periods old.
  read -r rtf camera_rate episode_s max_age < <(python -c 'import sys; r, f, e = map(float, sys.argv[1:]); print(r, f, e, 1.5 / f)' \
    "$rtf" "$fps" "$episode_s")
  echo "[demo] sim + teleop ($teleop_mode) + recorder, real-time factor $rtf; dataset $dataset ($repo_id, $fps fps)"
  echo "[demo] ROS_DOMAIN_ID=$ROS_DOMAIN_ID, discovery $ROS_AUTOMATIC_DISCOVERY_RANGE; logs in $out; Ctrl-C saves and stops"
  python -m wallx_ros.nodes.sim_node --ros-args --params-file "$root/config/sim.yaml" \
    -p real_time_factor:="$rtf" -p camera_rate_hz:="$camera_rate" ${sim_args[@]+"${sim_args[@]}"} > "$out/sim.log" 2>&1 &
  pids+=($!); names+=(sim_node)
  python -m wallx_ros.nodes.recorder_node --ros-args --params-file "$root/config/recorder.yaml" \
    -p use_sim_time:=true -p root:="$dataset" -p repo_id:="$repo_id" -p fps:="$fps" -p robot_type:=aloha \
    -p joint_names:="$joints" -p instruction:="$instruction" -p autostart:=true -p max_episode_s:="$episode_s" \
    -p max_age_s:="$max_age" -p progress_log_period_s:=10.0 ${policy_args[@]+"${policy_args[@]}"} \
    > >(log_to "$out/recorder.log") 2>&1 &
  pids+=($!); names+=(recorder_node)
  teleop_in=/dev/null
  if [ "$teleop_mode" = keyboard ]; then teleop_in=/dev/tty; fi
  # the simulated ALOHA's position limits (config/topics_embedded.yaml) bound the teleop's targets too
  read -r lower upper < <(python -c '
import json, sys, yaml
p = yaml.safe_load(open(sys.argv[1]))["policy_parameters"]
print(json.dumps(p["position_lower"]).replace(" ", ""), json.dumps(p["position_upper"]).replace(" ", ""))' \
    "$root/config/topics_embedded.yaml")
  python -m wallx_ros.nodes.teleop_node --ros-args --params-file "$root/config/teleop.yaml" \
    -p use_sim_time:=true -p mode:="$teleop_mode" -p joint_names:="$joints" \
    -p lower_limits:="$lower" -p upper_limits:="$upper" \
    -r "~/joint_trajectory:=/arm_controller/joint_trajectory" ${teleop_args[@]+"${teleop_args[@]}"} < "$teleop_in" > >(log_to "$out/teleop.log") 2>&1 &
  pids+=($!); names+=(teleop_node)
else
  # --- sim + policy in closed loop ------------------------------------------------------------------------
  extra=()
  if [ -z "$checkpoint" ]; then
    # the tiny WallX trained on scripted transfer-cube demonstrations by `bash scripts/demo.sh --learn` (models/README.md),
    # saved in LeRobot 0.4's layout: converted once for another line. It sees the top camera, the joints and the cube's
    # position (the sim's objects_in_joint_states); tiny weights trained from random: allow_random_weights
    checkpoint="$root/models/transfer_cube_tiny"
    if [ "$(python -c 'from wallx_ros.lerobot import versions; print(versions.installed_line())')" != 0.4 ]; then
      converted="$root/.cache/checkpoints/transfer_cube_tiny_$stack"
      if [ ! -f "$converted/model.safetensors" ]; then
        python -m wallx_ros.cli.convert_checkpoint "$checkpoint" "$converted" --to 0.6
      fi
      checkpoint=$converted
    fi
    read -r lower upper < <(python -c '
from wallx_ros.sim.aloha_scene import AlohaScene
lim = AlohaScene("aloha_transfer_cube").limits
print(*("[" + ", ".join(f"{v:.6g}" for v in side) + "]" for side in (lim.lower, lim.upper)))' | tr -d ' ' | sed 's/\]\[/] [/')
    extra=(-p allow_random_weights:=true -p "instruction:=transfer the cube to the left arm"
           -p "position_lower:=$lower" -p "position_upper:=$upper")
    sim_args=(-p scene:=aloha_transfer_cube -p seed:=1000 -p "cameras:=[face_view=top]" -p objects_in_joint_states:=true
              ${sim_args[@]+"${sim_args[@]}"})
    default_rtf=0.25   # one camera, a tiny model: ~0.5 s per chunk on this CPU
  fi
  if [ "$device" = cpu ]; then
    rtf=${rtf:-${default_rtf:-0.05}}
    extra+=(-p num_threads:=1)   # the simulator needs the other core
  else
    rtf=${rtf:-1.0}
  fi
  # the policy's topic set and the simulated robot's joint limits: one source of truth, config/topics_embedded.yaml
  mapfile -t remaps < <(python -c '
import json, sys, yaml
topic_set = yaml.safe_load(open(sys.argv[1]))
for src, dst in (topic_set["remappings"] or {}).items():
    print("-r"); print(f"{src}:={dst}")
for name, value in (topic_set.get("policy_parameters") or {}).items():
    print("-p"); print(f"{name}:={json.dumps(value)}")' "$root/config/topics_embedded.yaml")

  echo "[demo] sim + policy on $checkpoint ($device), real-time factor $rtf, output in $out"
  echo "[demo] ROS_DOMAIN_ID=$ROS_DOMAIN_ID, discovery $ROS_AUTOMATIC_DISCOVERY_RANGE; Ctrl-C stops"
  python -m wallx_ros.nodes.sim_node --ros-args --params-file "$root/config/sim.yaml" \
    -p real_time_factor:="$rtf" -p run_log:="$out/run.jsonl" -p log_status:=true ${sim_args[@]+"${sim_args[@]}"} \
    > >(log_to "$out/sim.log") 2>&1 &
  pids+=($!); names+=(sim_node)
  python -m wallx_ros.nodes.policy_node --ros-args --params-file "$root/config/policy.yaml" \
    -p checkpoint_dir:="$checkpoint" -p device:="$device" -p use_sim_time:=true "${extra[@]}" "${remaps[@]}" \
    ${policy_args[@]+"${policy_args[@]}"} > >(log_to "$out/policy.log") 2>&1 &
  pids+=($!); names+=(policy_node)
fi

any_alive() {
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
all_alive() {
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
  return 0
}
stopping=false
stop_all() {  # SIGINT every node (a clean ROS shutdown; the recorder saves and finalizes), SIGKILL what is alive after 60 s
  $stopping && return
  stopping=true
  echo "[demo] stopping"
  kill -INT "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 600); do
    any_alive || break
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
trap stop_all INT TERM
if [ -n "$duration" ]; then
  ( sleep "$duration"; kill -INT $$ 2>/dev/null ) &
  timer_pid=$!
fi
# wait until one node exits or we are interrupted
while ! $stopping && all_alive; do
  wait -n "${pids[@]}" 2>/dev/null || true
done
crashed=false
if ! $stopping; then
  echo "[demo] a node exited on its own (see $out/*.log)" >&2
  crashed=true
fi
stop_all
failed=false
summary=""
for i in "${!pids[@]}"; do
  rc=0
  wait "${pids[$i]}" 2>/dev/null || rc=$?
  summary+=" ${names[$i]} $rc"
  if [ "$rc" -ne 0 ]; then failed=true; fi
done
if [ -n "${timer_pid:-}" ]; then kill "$timer_pid" 2>/dev/null || true; fi
echo "[demo] exit codes:$summary"
if [ -s "$out/run.jsonl" ]; then
  python -m wallx_ros.cli.plot_run "$out/run.jsonl" -o "$out/plots" || true
fi
if $record; then echo "[demo] dataset: $dataset (repo_id $repo_id)"; fi
if $crashed || $failed; then exit 1; fi
exit 0
