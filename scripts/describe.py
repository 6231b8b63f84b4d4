import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.rule import backend, setup, sampler_style
from gift.chain import describe
from gift.io import read_jsonl, write_jsonl

cfg = setup(snakemake)
problems = read_jsonl(snakemake.input.problems)
d = cfg["gibbs"]["description"]
# the in-context examples: the seed problems' own (reference code, description) pairs
examples = [(p["task_id"], p["reference"], p["description"]) for p in problems]
rows = describe(
    backend(cfg, snakemake.input.model),
    problems,
    read_jsonl(snakemake.input.kept),
    examples,
    temperature=d["temperature"],
    top_p=d["top_p"],
    max_new_tokens=d["max_new_tokens"],
    style=sampler_style(cfg),
    seed=cfg["seed"],
    iteration=int(snakemake.wildcards.next) - 1,
)
write_jsonl(snakemake.output[0], rows)
