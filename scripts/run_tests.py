import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.chain import keep, test_codes
from gift.io import read_jsonl, write_jsonl
from gift.rule import setup, workers

cfg = setup(snakemake)
problems = read_jsonl(snakemake.input.problems)
codes = read_jsonl(snakemake.input.codes)
results = test_codes(
    problems,
    codes,
    timeout_s=cfg["execution"]["timeout_s"],
    workers=workers(snakemake),
    harness=cfg["codeinsight"]["harness"],
)
previous = read_jsonl(snakemake.input.previous[0]) if snakemake.input.previous else None
kept = keep(
    problems,
    codes,
    results,
    previous,
    seed=cfg["seed"],
    iteration=int(snakemake.wildcards.t),
    pool=snakemake.wildcards.pool,
    keep_all=snakemake.wildcards.pool == "rft" and cfg["rft"]["keep"] == "all",
)
write_jsonl(snakemake.output.tests, results)
write_jsonl(snakemake.output.kept, kept)
print(
    f"{sum(r['passed'] for r in results)}/{len(results)} samples passed; "
    f"{sum(bool(k['kept']) for k in kept)}/{len(kept)} problems kept a code",
    file=sys.stderr,
)
