import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

from gift.report import figure_iterations, figure_ppl, iteration_pass_rates
from gift.rule import setup

cfg = setup(snakemake)
figure_iterations(iteration_pass_rates(list(snakemake.input.tests)), snakemake.output.iterations)
figure_ppl(list(snakemake.input.ppl), snakemake.output.ppl, condition=cfg["ppl"]["condition"])
