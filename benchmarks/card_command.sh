#!/usr/bin/env bash
# Issue 16's figure: the card's command as a newcomer runs it. A fresh clone, a fresh venv,
# the README's install command, then exactly `nas search --space mobilenet --budget 50000`
# (no data dir: the embedded MNIST), timed, then both exports of its best trial.
#   bash benchmarks/card_command.sh OUT_DIR [REPO]      (run it on idle cores: it is a timing)
set -euo pipefail
out=$(realpath "${1:?output dir}"); repo=$(realpath "${2:-.}")
mkdir -p "$out"
work=$(mktemp -d)
git clone -q "$repo" "$work/nas"
cd "$work/nas"
python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
start=$SECONDS
pip install -q -e ".[test]" 2>&1 | grep -v -i "warning" || true
echo "install: $((SECONDS - start)) s" | tee "$out/card-cpu-times.txt"
unset NAS_DATA_DIR
cd "$work"  # a user's own folder: runs/ goes here
start=$(date +%s.%N)
nas search --space mobilenet --budget 50000 > "$out/card-cpu.log" 2>&1
echo "nas search --space mobilenet --budget 50000: $(echo "$(date +%s.%N) - $start" | bc) s wall" \
  | tee -a "$out/card-cpu-times.txt"
nas export runs/mnist-50k --best >> "$out/card-cpu.log" 2>&1
nas export runs/mnist-50k --best --format onnx >> "$out/card-cpu.log" 2>&1
cp runs/mnist-50k/pareto.json "$out/card-cpu-pareto.json"
nproc | sed 's/^/cores: /' >> "$out/card-cpu-times.txt"
rm -rf "$work"
