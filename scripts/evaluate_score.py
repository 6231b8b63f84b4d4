import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.evaluate import score_samples, score_samples_evalplus
from gift.io import read_jsonl, write_json, write_jsonl
from gift.rule import setup, workers

cfg = setup(snakemake)
ev = cfg["evaluation"]
n_workers = workers(snakemake)
problems, samples = read_jsonl(snakemake.input.problems), read_jsonl(snakemake.input.samples)
if snakemake.params.evaluator == "evalplus":
    results, per_problem, scores = score_samples_evalplus(
        problems,
        samples,
        snakemake.input.expected,
        workers=n_workers,
        ks=ev["ks"],
        min_time_limit=ev["min_time_limit"],
        gt_time_limit_factor=ev["gt_time_limit_factor"],
    )
else:
    results, per_problem, scores = score_samples(
        problems,
        samples,
        timeout_s=cfg["execution"]["timeout_s"],
        workers=n_workers,
        ks=ev["ks"],
        harness=cfg["codeinsight"]["harness"],
    )
write_jsonl(snakemake.output.results, results)
write_jsonl(snakemake.output.per_problem, per_problem)
write_json(snakemake.output.scores, dict(scores, model=snakemake.wildcards.model))
