"""Scores after every epoch of every fine-tuned method (evaluation.every_epoch)."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.rule import setup
from gift.tables import epochs_table, write_table

cfg = setup(snakemake)
df = epochs_table(list(snakemake.input), cfg["train"]["epochs"])
o = snakemake.output
write_table(
    df, o.csv, o.md, o.tex, caption=f"Pass rates (%) after each epoch of fine-tuning, experiment {cfg['experiment']}."
)
