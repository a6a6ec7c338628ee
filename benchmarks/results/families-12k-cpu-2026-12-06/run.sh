# code of 3cf44d7 (snapshot), both cores; the first 6 minutes shared core 1 with the end
# of a counted nas train (trial 36, 456 epochs)
python benchmarks/families.py --dataset fer2013 --space cnn,mobilenet --budget 12000 \
    --time 15m --at 12k --train-time 4m --search-args "--objective pareto" \
    --data-dir ../shared/data --runs-dir ../runs-fam12 \
    --json benchmarks/results/families-12k-cpu-2026-12-06.json
