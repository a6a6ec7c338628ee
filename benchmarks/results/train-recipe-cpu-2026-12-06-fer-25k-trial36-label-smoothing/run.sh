#!/bin/bash
# Label smoothing on faces: the 25k pooled-head winner (trial 36), 10 min each, flip-affine, ls 0.1 then 0, one core
export PYTHONPATH=/work/snap-s5b OMP_NUM_THREADS=1
while ! grep -q done /work/look12/run.log 2>/dev/null; do sleep 10; done
cd /work/ls5
for ls in 0.1 0; do
  start=$(date +%s)
  taskset -c 1 python -m nas train study --trial 36 --time 10m --label-smoothing $ls --data-dir /work/shared/data > train-ls$ls.log 2>&1
  echo "ls $ls rc=$? wall=$(( $(date +%s) - start ))" >> run.log
done
echo done >> run.log
