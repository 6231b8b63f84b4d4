import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.datasets import DataError, load_configured
from gift.io import write_jsonl
from gift.rule import setup

setup(snakemake)
name = snakemake.wildcards.split
s = snakemake.params.split
try:
    problems = load_configured(s)
except DataError as e:
    sys.exit(f"data.{name}: {e}")
if not problems:
    sys.exit(f"data.{name}: no problems in {s['path']} (split {s['split']})")
write_jsonl(snakemake.output[0], problems)
print(f"{name}: {len(problems)} {s['dataset']} problems from {s['path']} ({s['split']})", file=sys.stderr)
