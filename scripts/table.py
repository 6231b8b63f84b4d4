"""The main table (pass@k with 95 % bootstrap intervals over problems, markers where a paired difference
to the base model or RFT is distinguishable from noise), the paired comparisons, and the scores figure."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.report import figure_scores, figure_training_loss
from gift.rule import setup
from gift.tables import PAIRED_CAPTION, main_caption, main_table, paired_table, write_table

cfg = setup(snakemake)
i, o = snakemake.input, snakemake.output
b, seed = cfg["statistics"]["bootstrap"], cfg["seed"]
df = main_table(list(i.scores), list(i.per_problem), b=b, seed=seed)
n = int(df["problems"].iloc[0])
write_table(
    df,
    o.csv,
    o.md,
    o.tex,
    caption=main_caption(df.columns, n, cfg["data"]["test"]["dataset"], cfg["experiment"], b),
)
paired = paired_table(list(i.scores), list(i.per_problem), b=b, seed=seed)
write_table(paired, o.paired_csv, o.paired_md, o.paired_tex, caption=PAIRED_CAPTION)
figure_scores(df, o.figure)
figure_training_loss(list(i.checkpoints), o.training_loss)
