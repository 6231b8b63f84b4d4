import os
import sys

# the one job that goes online: the workflow sets HF_HUB_OFFLINE=1 for every job (rules/common.smk), and
# huggingface_hub reads it when it is imported, so it is lifted before anything imports it (gift.hub)
os.environ.update(HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0")

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.hub import main_fetch
from gift.rule import setup

setup(snakemake, torch_threads=False)
main_fetch(dict(snakemake.params.spec), snakemake.output[0], snakemake.config["cache"])
