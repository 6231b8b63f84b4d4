import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.io import read_jsonl, write_jsonl
from gift.ppl import score_pool
from gift.prompts import layout
from gift.rule import backend, setup

cfg = setup(snakemake)
pool = read_jsonl(snakemake.input.pool)
rows = (
    score_pool(
        backend(cfg, snakemake.input.model),
        read_jsonl(snakemake.input.problems),
        pool,
        layout=layout(cfg),
        condition=cfg["ppl"]["condition"],
        expand_tabs=cfg["ppl"]["expand_tabs"],
        strip_cr=cfg["ppl"]["strip_cr"],
    )
    if pool
    else []
)
write_jsonl(snakemake.output[0], rows)
