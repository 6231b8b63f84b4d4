import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.chain import sample_codes
from gift.io import read_jsonl, write_jsonl
from gift.prompts import layout
from gift.rule import backend, setup

cfg = setup(snakemake)
g = cfg["gibbs"]
rows = sample_codes(
    backend(cfg, snakemake.input.model),
    read_jsonl(snakemake.input.problems),
    read_jsonl(snakemake.input.descriptions),
    n=g["samples_per_step"],
    temperature=g["temperature"],
    top_p=g["top_p"],
    max_new_tokens=g["max_new_tokens"],
    layout=layout(cfg, sampler=True),
    seed=cfg["seed"],
    iteration=int(snakemake.wildcards.t),
    pool=snakemake.wildcards.pool,
)
write_jsonl(snakemake.output[0], rows)
