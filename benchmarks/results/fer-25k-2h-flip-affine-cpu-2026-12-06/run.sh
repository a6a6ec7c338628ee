#!/bin/bash
# FER2013 25k preset with flip-affine as the faces' long-run augmentation, one core, one thread
export PYTHONPATH=/work/snap-fer OMP_NUM_THREADS=1
cd /work/fer25b
start=$(date +%s)
taskset -c 1 python -m nas search --config /work/snap-fer/studies/fer2013-25k-2h.toml --data-dir /work/shared/data --runs-dir runs --no-progress > search.log 2>&1
echo "search rc=$? wall=$(( $(date +%s) - start ))" >> run.log
taskset -c 1 python -m nas export runs/fer2013-25k-2h --best --data-dir /work/shared/data > export.log 2>&1
echo "export rc=$?" >> run.log
taskset -c 1 python /work/snap-fer/benchmarks/study_trials.py runs/fer2013-25k-2h --json study-trials.json > study-trials.log 2>&1
echo done >> run.log
