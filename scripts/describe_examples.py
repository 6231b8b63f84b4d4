"""The in-context examples of the code -> description step: the seed problems' own pairs, or the authors'
file of [problem index, code summary] pairs resolved against the seed split in release order."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift import examples as X
from gift.datasets import load_configured
from gift.io import read_jsonl, write_jsonl
from gift.rule import setup

cfg = setup(snakemake)
source = cfg["gibbs"]["description"]["examples"]
if source == "seed":
    rows = X.from_seed(read_jsonl(snakemake.input.seed))
else:
    try:
        rows = X.from_file(source, load_configured(snakemake.params.seed_split, full=True))
    except X.ExamplesError as e:
        sys.exit(str(e))
if not rows:
    sys.exit(f"gibbs.description.examples: {source}: no usable example")
write_jsonl(snakemake.output[0], rows)
print(f"{len(rows)} in-context examples from {source}", file=sys.stderr)
