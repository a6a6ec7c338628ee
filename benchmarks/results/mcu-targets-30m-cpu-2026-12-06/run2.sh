#!/bin/bash
# the 4,500 B / 2,500 B MNIST row at T=20m, core 0, after CI
while ! grep -q '^rc=' /work/ci-check.log 2>/dev/null; do sleep 10; done
export PYTHONPATH=/work/snap27 OMP_NUM_THREADS=1
cd /work/runs27c
s=$(date +%s)
taskset -c 0 python -m nas search --config /work/snap27/studies/mnist-mcu-4500B.toml --time 20m --study mnist-mcu-4500B-20m --data-dir /work/shared/data --runs-dir runs --no-progress > mnist-mcu-4500B-20m.search.log 2>&1
echo "mnist-mcu-4500B-20m search rc=$? wall=$(( $(date +%s) - s ))" >> run2.log
taskset -c 0 python -m nas export runs/mnist-mcu-4500B-20m --best --int8 --data-dir /work/shared/data > mnist-mcu-4500B-20m.export.log 2>&1
echo "export rc=$?" >> run2.log
taskset -c 0 python -m nas export runs/mnist-mcu-4500B-20m --best --int8 --weights search --data-dir /work/shared/data > mnist-mcu-4500B-20m.export-search-weights.log 2>&1
echo "export-search rc=$?" >> run2.log
echo done >> run2.log
