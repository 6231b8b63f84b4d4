"""The pool analyses of a run: distinct solutions, pool growth, description drift, PPL summaries."""
import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.rule import setup
from gift.analysis import compare_distinct, description_drift_files, drift_by_iteration, passing_samples, pool_growth, ppl_summary_files
from gift.io import read_jsonl
from gift.report import figure_analysis, write_table

cfg = setup(snakemake)
i, o = snakemake.input, snakemake.output
pools = {p: read_jsonl(f) for p, f in zip(snakemake.params.pools, i.pools)}
distinct_kept = compare_distinct(pools, equal_budget=True)
passing = {p: [] for p in snakemake.params.pools}
for codes, tests in zip(i.codes, i.tests):
    pool = codes.split("/")[-3]
    passing[pool] += passing_samples(read_jsonl(codes), read_jsonl(tests))
distinct_passing = compare_distinct(passing, equal_budget=False)
growth = pool_growth(list(i.kept))
drift = drift_by_iteration(description_drift_files(i.seed, list(i.descriptions), embed=cfg["analysis"]["embedding"]))
ppl = ppl_summary_files(list(i.ppl))
for df, stem, caption in [
    (distinct_passing, "distinct_passing", "Distinct solutions (AST-normalised, names canonicalised) among all passing samples of each sampler, at equal sample budget."),
    (distinct_kept, "distinct_pools", "Distinct solutions in the pools (one kept code per step), each problem cut to the smaller pool."),
    (growth, "pool_growth", "Pass rate and pool growth per iteration."),
    (drift, "description_drift", "Similarity of the chain's descriptions to the seed description per iteration."),
    (ppl, "ppl_summary", "PPL distribution of each pool; tail mass above the RFT pool's 90th percentile."),
]:
    write_table(df, o[f"{stem}_csv"], o[f"{stem}_md"], None, caption)
figure_analysis(distinct_passing, growth, drift, o.figure)
