import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.io import write_json
from gift.report import summary
from gift.rule import setup

setup(snakemake)
i = snakemake.input
write_json(snakemake.output[0], summary(list(i.tests), list(i.pools), list(i.selected), list(i.scores)))
