#!/bin/bash
# FER2013 <= 50k preset, one core one thread, from a git clone of the code (snap50).
cd /work/run50
export PYTHONPATH=/work/snap50 OMP_NUM_THREADS=1
date -u +%FT%TZ > started
taskset -c 1 python -m nas search --config /work/snap50/studies/fer2013-50k-2h.toml \
    --data-dir /work/shared/data --runs-dir /work/run50/runs --no-progress > search.log 2>&1
echo "rc=$?" >> search.log
date -u +%FT%TZ > ended
