"""Published numbers next to this run's, over the paper's main grid (models x datasets x methods)."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

import pandas as pd

from gift.published import NEEDS_RUN, load_published, ours_from_scores
from gift.rule import setup
from gift.tables import write_table

cfg = setup(snakemake)
published = load_published(snakemake.input.published)
models = ["deepseek-coder-6.7b", "codellama-7b-python"]
datasets = ["appsplus-introductory", "appsplus-interview", "mbpp", "codeinsight"]
methods = ["base", "rft", "rft_rd", "gift_noppl", "gift"]
# a paper config's experiment is named paper-<model>-<dataset>; any other run is compared with nothing
exp = cfg["experiment"]
here = next(((m, d) for m in models for d in datasets if exp == f"paper-{m}-{d}"), None)
ours = ours_from_scores(
    list(snakemake.input.scores),
    model=here[0] if here else exp,
    dataset=here[1] if here else cfg["data"]["dataset"],
    run=exp,
)
grid = pd.DataFrame(
    [
        {"table": "main", "model": m, "dataset": d, "method": k, "metric": "pass@1"}
        for m in models
        for d in datasets
        for k in methods
    ]
)
pub = grid.merge(
    published[["model", "dataset", "method", "metric", "value"]],
    on=["model", "dataset", "method", "metric"],
    how="left",
)
rows = []
for r in pub.itertuples():
    mine = ours[(ours.model == r.model) & (ours.dataset == r.dataset) & (ours.method == r.method)]
    o = float(mine.value.iloc[0]) if len(mine) else float("nan")
    p = r.value
    rows.append(
        {
            "model": r.model,
            "dataset": r.dataset,
            "method": r.method,
            "metric": r.metric,
            "published": "not captured (docs/paper-map.md)" if pd.isna(p) else f"{p:.1f}",
            "this run": NEEDS_RUN if pd.isna(o) else f"{o:.1f}",
            "difference": "" if pd.isna(o) or pd.isna(p) else f"{o - p:+.1f}",
        }
    )
if not here:  # this run's own cells, which the paper has no counterpart for
    for r in ours.itertuples():
        rows.append(
            {
                "model": r.model,
                "dataset": r.dataset,
                "method": r.method,
                "metric": r.metric,
                "published": "not in the paper",
                "this run": f"{r.value:.1f}",
                "difference": "",
            }
        )
df = pd.DataFrame(rows)
o = snakemake.output
write_table(
    df,
    o.csv,
    o.md,
    o.tex,
    "Published pass@1 (%) of the GiFT paper next to this run; cells without a run need a paper-scale run.",
)
