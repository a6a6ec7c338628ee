#!/bin/bash
# flip-crop vs flip-affine on the 25k runoff winner (trial 36, pooled head, batch norm), one core each, at once
export PYTHONPATH=/work/snap-s4 OMP_NUM_THREADS=1
cd /work/recipe4
taskset -c 0 python /work/snap-s4/benchmarks/train_recipe.py study-crop --trial 36 --time 10m --recipes "--augment flip-crop" --train-args "--data-dir /work/shared/data" --json crop.json > crop.log 2>&1 &
taskset -c 1 python /work/snap-s4/benchmarks/train_recipe.py study-affine --trial 36 --time 10m --recipes "--augment flip-affine" --train-args "--data-dir /work/shared/data" --json affine.json > affine.log 2>&1 &
wait
echo done > done
