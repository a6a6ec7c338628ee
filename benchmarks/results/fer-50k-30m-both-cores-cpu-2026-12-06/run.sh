#!/bin/bash
# FER2013 <= 50k preset at 30 minutes, both cores, spread final training and runoff looks
export PYTHONPATH=/work/snap-s6c
cd /work/row50
start=$(date +%s)
python -m nas search --config /work/snap-s6c/studies/fer2013-50k-2h.toml --time 30m --study fer2013-50k-30m \
  --data-dir /work/shared/data --runs-dir /work/row50/runs --no-progress > search.log 2>&1
echo "search rc=$? wall=$(( $(date +%s) - start ))" >> run.log
python -m nas export runs/fer2013-50k-30m --best --data-dir /work/shared/data > export.log 2>&1
echo "export rc=$?" >> run.log
echo done >> run.log
