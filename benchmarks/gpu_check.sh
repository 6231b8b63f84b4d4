#!/usr/bin/env bash
# The GPU paths in one run of at most 10 minutes (benchmarks/gpu_check.py): one line per path, ok / failed /
# skipped. Runs anywhere; without a CUDA device it prints the skips. Exit status 1 when a path failed.
#   benchmarks/gpu_check.sh [--work DIR]        (PYTHON=... to choose the interpreter; default .venv's)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec timeout 600 "$PY" benchmarks/gpu_check.py "$@"
