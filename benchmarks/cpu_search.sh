#!/usr/bin/env bash
# Issue 2's CPU figure: wall time, best val/test accuracy and % infeasible/pruned of a
# 20-trial, 2-epoch mobilenet search on 10k MNIST images. Usage:
#   NAS_DATA_DIR=../shared/data bash benchmarks/cpu_search.sh [OUT_DIR]
set -euo pipefail
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
cd "$out"
start=$(date +%s.%N)
nas search --space mobilenet --budget 50000 --dataset mnist --limit-train 10000 \
    --trials 20 --epochs 2 --device cpu --no-progress | tee search.log
end=$(date +%s.%N)
echo "wall: $(python3 -c "print(f'{$end - $start:.1f} s')") on $(nproc) CPU cores"
nas pareto runs/mnist-50k > /dev/null
python3 - <<'PY'
import json
rows = json.load(open("runs/mnist-50k/pareto.json"))
best = max(rows, key=lambda r: r["val_acc"])
print(f"best: trial {best['trial']}, {best['params']:,} params, val_acc {best['val_acc']:.4f}, "
      f"test_acc {best['test_acc']:.4f}")
PY
