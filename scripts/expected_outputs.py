import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.evalplus import compute_expected
from gift.io import read_jsonl
from gift.rule import setup, workers

setup(snakemake)
problems = read_jsonl(snakemake.input.problems)
data = compute_expected(problems, snakemake.output[0], workers=workers(snakemake), force=True, progress=True)
print(
    f"expected outputs of {data['n_tasks']} tasks in {data['seconds']} s; reference failed on some input of "
    f"{data['n_errors']}; without EvalPlus inputs: {len(data['skipped'])}",
    file=sys.stderr,
)
if data["n_tasks"] == 0:
    sys.exit(f"{snakemake.input.problems}: no problem has EvalPlus inputs (base_input/plus_input)")
