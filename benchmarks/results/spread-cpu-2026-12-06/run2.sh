#!/bin/bash
export PYTHONPATH=/work/snap-s6 NAS_DATA_DIR=/work/shared/data
cd /work/spread6
python /work/snap-s6/benchmarks/spread.py families --trial 5 --time 5m --modes spread --train-args "--data-dir /work/shared/data" --json families-trial5-spread.json > t5s.log 2>&1; echo "5s rc=$?" >> run2.log
echo done >> run2.log
