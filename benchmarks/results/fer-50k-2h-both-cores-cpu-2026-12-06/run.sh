# Code of baee3c1 (a git clone snapshot, PYTHONPATH pointing at it), both cores, from 19:24:30.
PYTHONPATH=<snapshot> python -m nas search --config studies/fer2013-50k-2h.toml \
    --data-dir ../shared/data --runs-dir ../runs/fer50k-2h-both --no-progress
PYTHONPATH=<snapshot> python -m nas export ../runs/fer50k-2h-both/fer2013-50k-2h --best --data-dir ../shared/data
