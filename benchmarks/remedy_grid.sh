#!/usr/bin/env bash
# Issue 15's remedy grid on CIFAR-10 (JPEG): chang2022-cpu (simclr base, cluster-distill, matched)
# and liu2022-cpu (simclr base, sam, rwsam, matched) on the cifar10-lt-cpu design, one
# (seed, ratio) cell at a time, so every finished cell has both remedies and their controls.
# Both grids share the cell's base run (same run id; its kept weights start cluster-distill).
# It resumes: finished runs are skipped, an interrupted one continues from its checkpoint.
#   bash benchmarks/remedy_grid.sh DATA_ROOT [OUT]
# DATA_ROOT: ../shared/datasets/cifar10-jpeg.zip unpacked (python -m zipfile -e ZIP DIR).
set -euo pipefail
root=${1:?usage: remedy_grid.sh DATA_ROOT [OUT]}
out=${2:-benchmarks/records/cifar10-lt-cpu}
for seed in ${SEEDS:-0 1 2}; do
  for ratio in ${RATIOS:-1 100}; do
    for grid in chang2022-cpu liu2022-cpu; do
      imbssl-bench run --config "$grid" --data-root "$root" --out "$out" \
        --seeds "$seed" --ratios "$ratio"
    done
  done
done
