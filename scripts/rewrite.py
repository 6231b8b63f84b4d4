import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.chain import rewrite
from gift.io import read_jsonl, write_jsonl
from gift.prompts import layout
from gift.rule import backend, setup

cfg = setup(snakemake)
d = cfg["gibbs"]["description"]
rows = rewrite(
    backend(cfg, snakemake.input.model),
    read_jsonl(snakemake.input.problems),
    temperature=d["temperature"],
    top_p=d["top_p"],
    max_new_tokens=d["max_new_tokens"],
    layout=layout(cfg, sampler=True),
    seed=cfg["seed"],
    iteration=int(snakemake.wildcards.t),
)
write_jsonl(snakemake.output[0], rows)
