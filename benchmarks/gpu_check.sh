#!/usr/bin/env bash
# The CUDA checks, run once on a GPU machine from the repository root (results: BENCHMARKS.md).
# Uses the machine's own python3/torch; the package is installed without dependencies.
#   bash benchmarks/gpu_check.sh [LOGDIR]
set -u
export PYTHONUNBUFFERED=1
log=${1:-gpu-check}
mkdir -p "$log"
step() { echo; echo "=== $* ($(date +%T))"; }
{
step environment
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
nproc
python3 -m pip install -q --no-deps --no-index --no-build-isolation -e . 2>&1 | tail -2
step "bench_train demo.toml, batch 32 (the config's)"
python3 benchmarks/bench_train.py --device cuda --steps 40 --warmup 5
step "bench_train demo.toml, batch 256"
python3 benchmarks/bench_train.py --device cuda --steps 20 --warmup 3 --batch-size 256
step "bench_train fkd.toml"
timeout 90 python3 benchmarks/bench_train.py --device cuda --config configs/fkd.toml --steps 40 --warmup 5
step "make-demo + train-all on cuda"
ens make-demo demo --jobs 8 2>&1 | tail -3
/usr/bin/time -f "train-all wall %e s" ens train-all --data demo --out runs --quiet 2>&1 | tail -15
cat runs/scores.csv
python3 -c "import json,glob; [print(p, {k: json.load(open(p)).get(k) for k in ('device','train_images_per_s','val_score','train_seconds','total_seconds')}) for p in sorted(glob.glob('runs/*/summary.json'))]"
ens score runs/*/submission.csv --data demo 2>&1 | tail -8
step "torchrun, 1 process, nccl"
timeout 120 torchrun --nproc_per_node 1 -m ensemble train-all --data demo --out runs_ddp --only small_cnn_deeper --quiet 2>&1 | tail -8
cat runs_ddp/scores.csv
step "torchrun, 2 processes on fewer GPUs: expect a clear error"
timeout 60 torchrun --nproc_per_node 2 -m ensemble train-all --data demo --out runs_ddp2 --only small_cnn_deeper --quiet 2>&1 | grep -m2 "GPU"
step "pytest on the GPU machine (device auto = cuda)"
timeout 300 python3 -m pytest -v -n 8 -p no:cacheprovider -p no:benchmark 2>&1 | grep -E "FAILED|ERROR|passed|failed"
step done
} 2>&1 | tee "$log/log.txt"
