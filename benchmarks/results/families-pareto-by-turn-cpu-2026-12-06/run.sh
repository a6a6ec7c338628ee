#!/bin/bash
# Point 2: families at equal size, families by turn, a spread front (--objective pareto), one core
export PYTHONPATH=/work/snap-s5b OMP_NUM_THREADS=1
cd /work/fam5b
start=$(date +%s)
taskset -c 0 python /work/snap-s5b/benchmarks/families.py --dataset fer2013 --space cnn,mobilenet \
  --budget 50000 --time 45m --at 12k,25k,50k --train-time 10m \
  --search-args "--objective pareto" \
  --data-dir /work/shared/data --runs-dir /work/fam5b/runs \
  --json /work/fam5b/families-pareto.json > families.log 2>&1
echo "families rc=$? wall=$(( $(date +%s) - start ))" >> run.log
taskset -c 0 python /work/snap-s5b/benchmarks/study_trials.py runs/families --json study-trials.json > study-trials.log 2>&1
echo done >> run.log
