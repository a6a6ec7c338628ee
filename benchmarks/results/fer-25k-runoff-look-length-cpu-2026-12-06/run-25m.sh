#!/bin/bash
# Longer runoff look: the flip-affine 25k study's runoff winner (trial 87, flatten+BN) and the
# pooled+BN entrant (trial 16), each 25 min with the final recipe (flip-affine, ls 0.1), one core
export PYTHONPATH=/work/snap-s5 OMP_NUM_THREADS=1
cd /work/look5
for t in 16 87; do
  start=$(date +%s)
  taskset -c 1 python -m nas train study --trial $t --time 25m --augment flip-affine --data-dir /work/shared/data > train-$t.log 2>&1
  echo "trial $t rc=$? wall=$(( $(date +%s) - start ))" >> run.log
done
echo done >> run.log
