#!/usr/bin/env bash
# Run the full-size WallX inference benchmark on a GPU machine that has Python 3.12 + CUDA torch but no
# network: installs the carried wheels ($WALLX_BENCH_WHEELS, default bench/inference/whl/; see requirements-gpu.txt) into a private
# target folder that shadows the machine's own transformers / tokenizers / huggingface_hub, then runs
# bench/inference/wallx_inference.py. Results go to $OUT (default bench/results/). Extra arguments are
# passed to the benchmark, e.g.:  bash bench/inference/run_on_gpu.sh --cams 3 --modes diffusion
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
site=${WALLX_BENCH_SITE:-/tmp/wallx_bench_site}
wheels=${WALLX_BENCH_WHEELS:-bench/inference/whl}  # e.g. .whl, an ignored folder the run tool carries
if [ ! -f "$site/.installed" ]; then
  ls "$wheels"/*.whl >/dev/null 2>&1 || { echo "no wheels in $wheels (see requirements-gpu.txt)" >&2; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl
  touch "$site/.installed"
fi
export PYTHONPATH="$site:$root" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python3 -c "import torch, transformers, lerobot; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'gpu', torch.cuda.get_device_name(0))"
python3 bench/inference/wallx_inference.py --size full --device cuda --out-dir "${OUT:-bench/results}" "$@"
