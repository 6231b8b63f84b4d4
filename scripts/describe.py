import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.chain import describe
from gift.examples import as_triples
from gift.io import read_jsonl, write_jsonl
from gift.prompts import layout
from gift.rule import backend, setup

cfg = setup(snakemake)
d = cfg["gibbs"]["description"]
rows = describe(
    backend(cfg, snakemake.input.model),
    read_jsonl(snakemake.input.problems),
    read_jsonl(snakemake.input.kept),
    as_triples(read_jsonl(snakemake.input.examples)),
    temperature=d["temperature"],
    top_p=d["top_p"],
    max_new_tokens=d["max_new_tokens"],
    layout=layout(cfg, sampler=True),
    seed=cfg["seed"],
    iteration=int(snakemake.wildcards.next) - 1,
    on_no_pass=cfg["gibbs"]["on_no_pass"],
)
write_jsonl(snakemake.output[0], rows)
