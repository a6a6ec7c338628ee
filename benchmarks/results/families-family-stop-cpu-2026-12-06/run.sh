# code of 3cf44d7 (snapshot), core 0, one thread; core 1 ran other jobs (nas train, tests)
OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/families.py --dataset fer2013 --space cnn,mobilenet \
    --budget 50000 --time 45m --at 12k,25k,50k --train-time 10m --search-args "--objective pareto" \
    --data-dir ../shared/data --runs-dir ../runs-fam8 --json benchmarks/results/families-family-stop-cpu-2026-12-06.json
python benchmarks/study_trials.py ../runs-fam8/families --json benchmarks/results/study-trials-cpu-2026-12-06-families-family-stop.json
