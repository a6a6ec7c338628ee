#!/bin/bash
# The runoff's two leading kinds in the flip-affine 25k study at a 12-min look (final recipe), one core
export PYTHONPATH=/work/snap-s5 OMP_NUM_THREADS=1
while ! grep -q done /work/look5/run.log 2>/dev/null; do sleep 10; done
cd /work/look12
for t in 16 87; do
  start=$(date +%s)
  taskset -c 1 python -m nas train study --trial $t --time 12m --augment flip-affine --data-dir /work/shared/data > train-$t.log 2>&1
  echo "trial $t rc=$? wall=$(( $(date +%s) - start ))" >> run.log
done
echo done >> run.log
