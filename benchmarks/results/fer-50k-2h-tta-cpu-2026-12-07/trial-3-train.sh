#!/bin/bash
# The 50k run's runoff runner-up of the pooled-head batch-norm kind (trial 3), trained by
# nas train for the rest of the session's first core, beside the preset's final training.
cd /work/t3
export PYTHONPATH=/work/snap50 OMP_NUM_THREADS=1
taskset -c 0 python -m nas train /work/t3/study --trial 3 --time 45m --data-dir /work/shared/data > train-3.log 2>&1
echo "rc=$?" >> train-3.log
