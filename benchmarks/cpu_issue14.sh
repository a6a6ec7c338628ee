#!/usr/bin/env bash
# Issue 14's target rows on a 2-core CPU: a 30-minute search, then `nas train --best` sized to
# fit the row's 90 minutes. Each row runs on one thread (THREADS, default 1): on this CPU a
# second thread speeds a small net's step by under 10%, so two rows side by side take the same
# wall time as one. The MAC caps keep the retrain inside the row's time (an 8k net at 1.6M
# MACs trains at ~62 s per 54k-image epoch on one thread).
#   bash benchmarks/cpu_issue14.sh DATA_DIR OUT_DIR ROW        ROW: mnist-8k | mnist-50k | fashion-50k
set -euo pipefail
data=${1:?data dir}; out=${2:?output dir}; row=${3:?row}
export OMP_NUM_THREADS=${THREADS:-1} PYTHONUNBUFFERED=1
mkdir -p "$out"; runs="$out/runs"
t() { local start=$SECONDS; "$@"; echo "$((SECONDS - start)) s: $*"; }
search() { t nas search --dataset "$1" --data-dir "$data" --runs-dir "$runs" --study "$row" --device cpu \
  --limit-train 10000 --epochs 3 --trials 500 --timeout 1800 --fill 0.8 --no-progress "${@:2}"; }
case $row in
  mnist-8k) search mnist --space cnn --budget 8000 --max-macs 1M
    t nas train "$runs/$row" --best --epochs 40 --augment crop --label-smoothing 0.1 --device cpu ;;
  mnist-50k) search mnist --space mobilenet --budget 50000 --max-macs 800k --timeout 1500
    t nas train "$runs/$row" --best --epochs 40 --augment crop --label-smoothing 0.1 --device cpu ;;
  fashion-50k) search fashion-mnist --space mobilenet --budget 50000 --max-macs 1.5M
    t nas train "$runs/$row" --best --epochs 50 --augment flip-crop --label-smoothing 0.1 --device cpu ;;
  *) echo "unknown row $row" >&2; exit 2 ;;
esac
cp "$runs/$row/pareto.json" "$out/$row-pareto.json"
cp "$runs/$row"/retrained/trial-*.json "$out/$row-retrained.json"
