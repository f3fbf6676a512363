#!/usr/bin/env bash
# Wall time of the README quickstart (3 SimSiam runs on digits + leaderboard) in a fresh folder.
# Usage: bash benchmarks/time_quickstart.sh [repeats]   (prints one line per repeat, then the median)
set -euo pipefail
repeats=${1:-1}
times=()
for i in $(seq "$repeats"); do
  dir=$(mktemp -d)
  start=$(date +%s.%N)
  (cd "$dir" && imbssl-bench run --method simsiam --ratios 1,10,100 --dataset digits --out runs/ \
     >/dev/null 2>&1 && imbssl-bench leaderboard --results runs/ --out runs/LEADERBOARD.md 2>/dev/null)
  end=$(date +%s.%N)
  t=$(python3 -c "print(round($end - $start, 1))")
  echo "run $i: ${t} s ($(ls "$dir"/runs/*.json | wc -l) records)"
  times+=("$t")
  rm -rf "$dir"
done
python3 -c "import statistics,sys; print('median:', statistics.median(map(float, sys.argv[1:])), 's')" "${times[@]}"
