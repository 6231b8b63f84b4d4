"""Across replicate seeds: every cell's mean and standard deviation over seeds, and the paired comparisons
pooled over seeds (a pair is one problem in one seed's run)."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.rule import setup
from gift.tables import PAIRED_CAPTION, replicates_paired_table, replicates_table, write_table

cfg = setup(snakemake)
i, o = snakemake.input, snakemake.output
df = replicates_table(list(i.scores), list(i.per_problem))
write_table(
    df,
    o.csv,
    o.md,
    o.tex,
    caption=f"Pass rates (%) over {int(df['seeds'].iloc[0])} replicate seeds "
    f"({', '.join(map(str, cfg['replicates']))}) "
    f"of experiment {cfg['experiment']}: mean ± standard deviation between seeds.",
)
paired = replicates_paired_table(
    list(i.scores), list(i.per_problem), b=cfg["statistics"]["bootstrap"], seed=cfg["seed"]
)
write_table(
    paired,
    o.paired_csv,
    o.paired_md,
    o.paired_tex,
    caption=PAIRED_CAPTION + " Pooled over the replicate seeds: a pair is one problem in one seed's run.",
)
