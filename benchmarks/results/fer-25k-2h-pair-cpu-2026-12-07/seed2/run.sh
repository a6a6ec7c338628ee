#!/bin/bash
# 25k preset, seed 2, one core one thread, code of snapshot /work/snap-s10
cd /work/snap-s10
export PYTHONPATH=/work/snap-s10 OMP_NUM_THREADS=1
date -u +%FT%TZ > /work/run25s2/start
git -C /work/snap-s10 rev-parse --short HEAD > /work/run25s2/commit
taskset -c 0 python -m nas search --config studies/fer2013-25k-2h.toml --seed 2 --data-dir /work/shared/data \
  --runs-dir /work/run25s2/runs --no-progress > /work/run25s2/search.log 2>&1
echo "rc $?" >> /work/run25s2/search.log
date -u +%FT%TZ > /work/run25s2/end
