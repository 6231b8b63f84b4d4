import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.io import read_jsonl, write_jsonl
from gift.rule import setup
from gift.select import select

cfg = setup(snakemake)
spec = snakemake.params.spec
scored = read_jsonl(snakemake.input.pool)
# the authors' single stream visits the problems in the seed problems' own order
seed = list(snakemake.input.seed)  # [] or [data/seed.jsonl] (selection.stream: single)
order = [p["task_id"] for p in read_jsonl(seed[0])] if seed else None
if spec.get("iterations"):  # only the first N iterations of the chain: the effect of T without another run
    scored = [r for r in scored if r.get("iteration", 0) < spec["iterations"]]
rows = select(
    scored,
    k=cfg["selection"]["k"],
    weighting=spec["weighting"],
    temperature=spec.get("temperature", 2.0),
    seed=cfg["seed"],
    method=snakemake.wildcards.method,
    stream=cfg["selection"]["stream"],
    order=order,
)
write_jsonl(snakemake.output[0], rows)
