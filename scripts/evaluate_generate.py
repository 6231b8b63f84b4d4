import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.evaluate import generate_samples
from gift.io import read_jsonl, write_jsonl
from gift.prompts import layout
from gift.rule import backend, setup

cfg = setup(snakemake)
e = cfg["evaluation"]
rows = generate_samples(
    backend(cfg, snakemake.params.model_path),
    read_jsonl(snakemake.input.problems),
    n_samples=e["n_samples"],
    temperature=e["temperature"],
    top_p=e["top_p"],
    max_new_tokens=e["max_new_tokens"],
    layout=layout(cfg),
    seed=cfg["seed"],
    label="eval",
)
write_jsonl(snakemake.output[0], rows)
