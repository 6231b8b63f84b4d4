"""Published numbers next to this run's: one row per cell the paper publishes (this run's number, or
``needs paper-scale run``), or one line saying that no published number is recorded."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.io import write_text
from gift.published import NOTHING_PUBLISHED, SHOWN, comparison_rows, load_published, ours_from_scores
from gift.rule import setup
from gift.tables import write_table

cfg = setup(snakemake)
published = load_published(snakemake.input.published)
models = ["deepseek-coder-6.7b", "codellama-7b-python"]
datasets = ["appsplus-introductory", "appsplus-interview", "mbpp", "codeinsight"]
# a paper config's experiment is named paper-<model>-<dataset>; any other run matches no published cell
exp = cfg["experiment"]
here = next(((m, d) for m in models for d in datasets if exp == f"paper-{m}-{d}"), None)
ours = ours_from_scores(
    list(snakemake.input.scores),
    model=here[0] if here else exp,
    dataset=here[1] if here else cfg["data"]["dataset"],
    run=exp,
)
df = comparison_rows(published, ours)
o = snakemake.output
if len(df):
    write_table(
        df,
        o.csv,
        o.md,
        o.tex,
        "Published greedy pass@1 (%) of the GiFT paper next to this run's; a cell without a run of its "
        "paper config says so.",
    )
else:
    write_text(o.csv, ",".join(f'"{c}"' if " " in c else c for c in SHOWN) + "\n")
    write_text(o.md, NOTHING_PUBLISHED + "\n")
    write_text(o.tex, "% " + NOTHING_PUBLISHED + "\n")
