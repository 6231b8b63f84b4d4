"""The pool analyses of a run: distinct solutions, pool growth, description drift, PPL summaries."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.analysis import run_analyses
from gift.io import read_jsonl
from gift.report import figure_analysis
from gift.rule import setup
from gift.tables import write_table

cfg = setup(snakemake)
i, o = snakemake.input, snakemake.output
pools = snakemake.params.pools
samples = {p: [] for p in pools}
for codes, tests in zip(i.codes, i.tests, strict=True):
    samples[codes.split("/")[-3]].append((codes, tests))
res = run_analyses(
    {p: read_jsonl(f) for p, f in zip(pools, i.pools, strict=True)},
    samples,
    list(i.kept),
    i.seed,
    list(i.descriptions),
    list(i.ppl),
    embed=cfg["analysis"]["embedding"],
)
for stem, caption in [
    (
        "distinct_passing",
        "Distinct solutions (AST-normalised, names canonicalised) among all passing samples of each sampler, "
        "at equal sample budget.",
    ),
    (
        "distinct_pools",
        "Distinct solutions in the pools (one kept code per step), each problem cut to the smaller pool.",
    ),
    ("pool_growth", "Pass rate and pool growth per iteration."),
    ("description_drift", "Similarity of the chain's descriptions to the seed description per iteration."),
    ("ppl_summary", "PPL distribution of each pool; tail mass above the RFT pool's 90th percentile."),
]:
    write_table(res[stem], o[f"{stem}_csv"], o[f"{stem}_md"], None, caption)
figure_analysis(res["distinct_passing"], res["pool_growth"], res["description_drift"], o.figure)
