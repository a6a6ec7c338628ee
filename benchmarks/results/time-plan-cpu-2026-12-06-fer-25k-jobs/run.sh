#!/bin/bash
export PYTHONPATH=/work/snap-s6b
cd /work/planA
python /work/snap-s6b/benchmarks/time_plan.py --dataset fer2013 --space cnn --budget 25000 --time 20m \
  --variant jobs=1 --variant jobs=0 --data-dir /work/shared/data --runs-dir /work/planA/runs \
  --json /work/planA/time-plan-jobs.json > plan.log 2>&1
echo "rc=$?" >> run.log
