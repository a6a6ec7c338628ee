#!/bin/bash
export PYTHONPATH=/work/snap-s6 NAS_DATA_DIR=/work/shared/data
cd /work/spread6
B=/work/snap-s6/benchmarks/spread.py
python $B fer25k --trial 36 --time 5m --train-args "--data-dir /work/shared/data" --json fer25k-trial36.json > t36.log 2>&1; echo "36 rc=$?" >> run.log
python $B families --trial 5 --time 5m --train-args "--data-dir /work/shared/data" --json families-trial5.json > t5.log 2>&1; echo "5 rc=$?" >> run.log
python $B fer25k --trial 87 --time 5m --modes one,auto,spread --train-args "--data-dir /work/shared/data" --json fer25k-trial87.json > t87.log 2>&1; echo "87 rc=$?" >> run.log
echo done >> run.log
