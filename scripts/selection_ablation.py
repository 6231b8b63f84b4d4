"""The selection ablation table and figure: how each method drew its training codes, and its score."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.report import figure_selection
from gift.rule import setup
from gift.tables import selection_table, write_table

cfg = setup(snakemake)
i, o = snakemake.input, snakemake.output
df = selection_table(
    cfg["methods"],
    cfg["gibbs"]["iterations"],
    list(i.scores),
    list(i.selected),
    list(i.ppl),
    list(i.per_problem),
    b=cfg["statistics"]["bootstrap"],
    seed=cfg["seed"],
)
write_table(
    df,
    o.csv,
    o.md,
    o.tex,
    caption="Selection ablation: how each method drew its training codes (pool, weighting, temperature, "
    "Gibbs iterations used), what it drew, and its pass rates (%).",
)
figure_selection(df, list(i.selected), o.figure, condition=cfg["ppl"]["condition"])
