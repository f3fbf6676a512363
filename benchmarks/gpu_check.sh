#!/usr/bin/env bash
# The GPU check (issue 18): one script, two steps.
#
#   bash benchmarks/gpu_check.sh prepare [TRAIN_PER_CLASS [TEST_PER_CLASS]]
#       On the CPU machine, online: the wheels the GPU machine lacks (lightly and hydra-core,
#       kornia, faiss-cpu, for Python 3.12; the versions installed here) into .whl/, and a
#       subset of CIFAR-10 (JPEG) from ../shared/datasets/cifar10-jpeg.zip into
#       .gpu/cifar10-subset.zip (2,000 train and 500 test images per class by default, the
#       first by file name: about 25 MB, so that the tree, the wheels and the data stay under
#       the device tool's 64 MiB). Both folders are git-ignored; carry them to the device.
#   bash benchmarks/gpu_check.sh run [gpu_check.py options, e.g. --out $OUT/gpu_check.json]
#       On the GPU machine, offline, from the repository root: installs .whl/ (when present)
#       and the package without its dependencies, then runs benchmarks/gpu_check.py (tests
#       marked gpu, throughput against plain Lightly, a short SimCLR with its online kNN
#       curve), which writes one JSON. About 5 minutes on one H200; budget 8.
#
# Device call: run(command="bash benchmarks/gpu_check.sh run --out $OUT/gpu_check.json",
#                  carry=[".whl", ".gpu"], timeout_s=560)
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:-}
shift || true

wheels() {
  mkdir -p .whl
  local spec=()
  version() { python3 -m pip show "$1" | sed -n 's/^Version: //p'; }
  for name in lightly hydra-core omegaconf kornia kornia_rs faiss-cpu; do
    spec+=("$name==$(version "$name")")
  done
  # omegaconf's antlr4 runtime has no wheel on PyPI (a pure-Python sdist): built here
  python3 -m pip wheel -q --no-deps -w .whl \
    "antlr4-python3-runtime==$(version antlr4-python3-runtime)"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${spec[@]}"
}

subset() {  # TRAIN_PER_CLASS TEST_PER_CLASS
  python3 - "$1" "$2" <<'EOF'
import collections, sys, zipfile
from pathlib import Path
per = {"train": int(sys.argv[1]), "test": int(sys.argv[2])}
src = Path("../shared/datasets/cifar10-jpeg.zip")
if not src.is_file():
    sys.exit(f"error: {src} is missing; the SimCLR part needs CIFAR-10 (JPEG) images")
out = Path(".gpu/cifar10-subset.zip")
out.parent.mkdir(exist_ok=True)
kept = collections.Counter()
with zipfile.ZipFile(src) as z, zipfile.ZipFile(str(out) + ".tmp", "w") as dst:
    for name in sorted(n for n in z.namelist() if n.endswith(".jpg")):
        split, cls = name.split("/")[:2]
        if kept[split, cls] < per[split]:
            kept[split, cls] += 1
            dst.writestr(name, z.read(name))
    dst.writestr("SUBSET.txt", f"CIFAR-10 (JPEG) subset: the first {per['train']} train and "
                 f"{per['test']} test images per class by file name, from {src.name}\n")
Path(str(out) + ".tmp").replace(out)
print(f"{out}: {sum(kept.values())} images, {out.stat().st_size / 2**20:.1f} MiB")
EOF
}

case "$step" in
  prepare)
    wheels
    subset "${1:-2000}" "${2:-500}"
    du -sh .whl .gpu
    ;;
  run)
    if compgen -G ".whl/*.whl" > /dev/null; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
      export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    python3 -m pip show -q imbssl-bench 2>/dev/null ||
      python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
    exec python3 benchmarks/gpu_check.py "$@"
    ;;
  *)
    echo "usage: gpu_check.sh prepare [TRAIN_PER_CLASS [TEST_PER_CLASS]] | run [OPTIONS]" >&2
    exit 2
    ;;
esac
