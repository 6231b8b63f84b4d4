import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.chain import seed_descriptions
from gift.io import read_jsonl, write_jsonl
from gift.rule import setup

setup(snakemake)
write_jsonl(snakemake.output[0], seed_descriptions(read_jsonl(snakemake.input[0])))
