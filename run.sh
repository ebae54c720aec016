#!/usr/bin/env bash
# One entry point that sets itself up on a fresh machine.
#   bash run.sh demo   -> install into .venv, run the demo study and its analysis report
#   bash run.sh test   -> install into .venv (with test extras), run the test suite
# Anything after the sub-command is passed through (to `sparsetopo study` or to pytest).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${SPARSETOPO_VENV:-.venv}
PY=${PYTHON:-python3}

setup() {
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # constraints/cpu.txt pins torch==2.13.0, the CPU wheel (pyproject.toml asks only torch>=2.13).
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints/cpu.txt -e ".${extras:+[$extras]}"
  # compile the metrics' numba kernels into their on-disk cache once (~10 s), not in every worker
  "$VENV/bin/python" -m sparsetopo.metrics.warmup
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    setup ""   # the demo runs on the local executor: no Ray to install
    out=${SPARSETOPO_DEMO_DIR:-runs/demo}
    "$VENV/bin/sparsetopo" study run --preset demo --out "$out" "$@"
    "$VENV/bin/sparsetopo" analyze "$out/pool.parquet" --layers "$out/pool_layers.parquet" \
        --out "$out/report" --runs 20 --jobs 2
    # the recommender on the pool it just made: untrained candidates of cnn_s at sparsity 0.9
    # (between the pool's 0.8 and 0.95: a new cell)
    "$VENV/bin/sparsetopo" rank --model cnn_s --sparsity 0.9 --dataset digits --pool "$out/pool.parquet" \
        --out "$out/rank_cnn_s_0.9.csv"
    echo "Report: $out/report/index.md"
    ;;
  test)
    setup test
    "$VENV/bin/python" -m pytest -q "$@"
    ;;
  *)
    echo "usage: bash run.sh demo|test [args...]" >&2
    exit 2
    ;;
esac
