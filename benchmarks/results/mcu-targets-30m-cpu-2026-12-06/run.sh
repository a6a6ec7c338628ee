#!/bin/bash
# issue 27 targets at T=30m, one core (core 0), one thread, one after another
export PYTHONPATH=/work/snap27 OMP_NUM_THREADS=1
cd /work/runs27c
run() {  # preset, study
  s=$(date +%s)
  taskset -c 0 python -m nas search --config /work/snap27/studies/$1.toml --time 30m --study $2 --data-dir /work/shared/data --runs-dir runs --no-progress > $2.search.log 2>&1
  echo "$2 search rc=$? wall=$(( $(date +%s) - s ))" >> run.log
  taskset -c 0 python -m nas export runs/$2 --best --int8 --data-dir /work/shared/data > $2.export.log 2>&1
  echo "$2 export rc=$?" >> run.log
  taskset -c 0 python -m nas export runs/$2 --best --int8 --format onnx --data-dir /work/shared/data > $2.export-onnx.log 2>&1
  echo "$2 export-onnx rc=$?" >> run.log
  taskset -c 0 python -m nas pareto runs/$2 --x ram --data-dir /work/shared/data > $2.pareto-ram.log 2>&1
}
run mnist-mcu-64KB mnist-mcu-64KB-30m
run fashion-mnist-mcu-64KB fashion-mnist-mcu-64KB-30m
echo done >> run.log
