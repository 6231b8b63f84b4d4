"""The paper's main table, the claim figure and the published-vs-run comparison from the experiments' own tables
(rules/paper.smk): a missing experiment is a gap with its name, a stale one is flagged."""

import os
import sys

# the repository root (snakemake.scriptdir is scripts/): `gift` imports without `pip install -e .`
sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))

import pandas as pd

from gift.paper import (
    MISSING,
    OK,
    STALE,
    cells,
    claim_points,
    figure_claim,
    gain_over_rd,
    published_rows,
    stale_reason,
    write_main,
)
from gift.published import load_published
from gift.rule import setup
from gift.tables import MARKERS, write_table

ROOT = os.path.dirname(os.path.abspath(snakemake.scriptdir))
setup(snakemake, torch_threads=False)
o, p = snakemake.output, snakemake.params
entries = []
for e in p.experiments:
    e = dict(e, reason="")
    main = os.path.join(e["dir"], "tables", "main.csv")
    if not os.path.exists(main):
        e["status"] = MISSING
    elif p.check_stale:
        configs = [c if os.path.exists(c) else os.path.join(ROOT, c) for c in p.configs[e["name"]]]
        e["reason"] = stale_reason(ROOT, configs, main)
        e["status"] = STALE if e["reason"].startswith("config changed") else OK
    else:
        e["status"] = OK
    print(f"{e['name']}: {e['status']} {e['reason']}", file=sys.stderr)
    entries.append(e)

long = cells(entries)
n_ok = sum(e["status"] != MISSING for e in entries)
write_main(
    long,
    entries,
    o.csv,
    o.md,
    o.tex,
    caption="Greedy pass@1 (%) of each method (rows) per model / dataset (columns), each cell from that "
    "experiment's own tables/main.csv: the value, its 95 % bootstrap interval over the test problems and, in "
    f"parentheses, the paired difference to RFT in percentage points; {MARKERS['base']} / {MARKERS['rft']}: the "
    "paired 95 % interval of the difference to the base model / RFT excludes 0. — : no result (the experiment "
    f"is named); [STALE]: its config changed since its tables were made. {n_ok} of {len(entries)} experiments.",
)
status = pd.DataFrame(
    [
        {k: e[k] for k in ("model", "dataset", "name", "config_file", "status", "reason")}
        | {"tables": os.path.join(e["dir"], "tables", "main.csv")}
        for e in entries
    ]
)
status.to_csv(o.experiments + ".tmp", index=False)
os.replace(o.experiments + ".tmp", o.experiments)

ok = long[long["status"] != MISSING] if len(long) else long
rd = {}
for e in entries:
    if e["status"] != MISSING:
        metrics = ok[ok["experiment"] == e["name"]]["metric"]
        if len(metrics):
            rd[e["name"]] = gain_over_rd(e, metrics.iloc[0])
points = claim_points(long, {k: v for k, v in rd.items() if v})
points.to_csv(o.claim + ".tmp", index=False, float_format="%.4g")
os.replace(o.claim + ".tmp", o.claim)
figure_claim(points, o.figure)

comparison = published_rows(long, load_published(snakemake.input.published))
write_table(
    comparison,
    o.comparison_csv,
    o.comparison_md,
    o.comparison_tex,
    "Published greedy pass@1 (%) of the GiFT paper beside these runs (each experiment's headline benchmark); "
    "a published cell without a run needs one; a run cell the paper has no number for says so.",
)
