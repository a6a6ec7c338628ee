#!/bin/bash
# Point 2: families at equal size with a spread front (--objective pareto), one core, one thread
export PYTHONPATH=/work/snap-s5 OMP_NUM_THREADS=1
cd /work/fam5
start=$(date +%s)
taskset -c 0 python /work/snap-s5/benchmarks/families.py --dataset fer2013 --space cnn,mobilenet \
  --budget 50000 --time 45m --at 12k,25k,50k --train-time 10m \
  --search-args "--objective pareto" --train-args "--augment flip-affine" \
  --data-dir /work/shared/data --runs-dir /work/fam5/runs \
  --json /work/fam5/families-pareto.json > families.log 2>&1
echo "families rc=$? wall=$(( $(date +%s) - start ))" >> run.log
taskset -c 0 python /work/snap-s5/benchmarks/study_trials.py runs/families --json study-trials.json > study-trials.log 2>&1
echo done >> run.log
