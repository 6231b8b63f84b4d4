import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.model import prepare_base
from gift.rule import setup

setup(snakemake)
prepare_base(
    snakemake.params.base,
    snakemake.params.gguf_file or None,
    snakemake.output[0],
    fetched=snakemake.input.get("fetched"),
)
