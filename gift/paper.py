"""The paper's main table from several experiments (one per model and dataset): methods as rows, model x
dataset as columns, each cell the greedy pass@1 of that experiment's own ``tables/main.csv`` (value, 95 %
bootstrap interval, markers) and its paired difference to RFT from ``tables/comparison_paired.csv``; the
claim figure (gain over RFT and RFT+RD against the base model's pass rate per dataset); the published
numbers beside the runs. Read only from the experiments' result files: a missing experiment is a gap with
its name, a stale one (its config changed since its tables were made) is flagged.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .io import atomic_path, read_json, write_text
from .tables import METHOD_LABELS, write_table

ORDER = list(METHOD_LABELS)  # base, rft, rft_rd, gift_noppl, gift, then any other method
GREEDY = "pass@1 (greedy)"
MISSING, STALE, OK = "missing", "stale", "ok"


def parse_name(config_path: str) -> tuple[str, str]:
    """(model, dataset) from a config file named ``<model>--<dataset>.yaml`` (config/paper/*)."""
    stem = Path(config_path).stem
    model, sep, dataset = stem.partition("--")
    if not sep or not model or not dataset:
        raise ValueError(f"{config_path}: an experiment's config file is named <model>--<dataset>.yaml")
    return model, dataset


def greedy_columns(main_csv_columns) -> list[str]:
    """The greedy pass@1 columns of an experiment's main table: one, or one per benchmark of an EvalPlus
    test set, the headline first (``MBPP+ pass@1 (greedy)``, ``MBPP pass@1 (greedy)``)."""
    cols = [c for c in main_csv_columns if c.endswith(GREEDY)]
    # the headline first: an EvalPlus test set's plus benchmark (as gift.report.figure_scores shows it)
    return sorted(cols, key=lambda c: not c[: -len(GREEDY)].strip().endswith("+"))


def column_name(model: str, dataset: str, metric: str) -> str:
    bench = metric[: -len(GREEDY)].strip()
    return f"{model} / {dataset}" + (f" ({bench})" if bench else "")


def stale_reason(root: str, configs: list[str], tables: str, timeout: int = 600) -> str:
    """Why an experiment's tables are out of date with its config, by Snakemake's own record: a dry run of
    the experiment's main table with ``--rerun-triggers params`` (what a changed setting reruns, or a file
    it adds) lists the jobs it would run; "" when nothing is to be done."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", "--rerun-triggers", "params", "--cores", "1"]
    cmd += ["--snakefile", str(Path(root) / "Snakefile"), "--configfile", *configs, "--", tables]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        last = [line for line in out.splitlines() if line.strip()][-1:] or ["?"]
        return f"not checked (dry run failed: {last[0][:160]})"
    if "Nothing to be done" in out:
        return ""
    jobs = re.search(r"^job\s+count\n-+\s+-+\n(.*?)^total\s+(\d+)", out, re.M | re.S)
    rules = [line.split()[0] for line in jobs.group(1).splitlines() if line.strip()] if jobs else []
    return f"config changed since its tables: {jobs.group(2) if jobs else '?'} jobs to rerun ({', '.join(rules)})"


def _read_csv(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _method_key(label: str) -> str:
    return next((k for k, v in METHOD_LABELS.items() if v == label), label)


def cells(entries: list[dict]):
    """Long form, one row per (experiment, metric, method): value, interval, marker of the experiment's own
    main table and the paired difference to RFT; a missing experiment gives one row with status missing."""
    import pandas as pd

    rows = []
    for e in entries:
        base = {"model": e["model"], "dataset": e["dataset"], "experiment": e["name"], "status": e["status"]}
        if e["status"] == MISSING:
            rows.append({**base, "column": f"{e['model']} / {e['dataset']}"})
            continue
        main = _read_csv(Path(e["dir"]) / "tables" / "main.csv")
        paired = _read_csv(Path(e["dir"]) / "tables" / "comparison_paired.csv")
        for metric in greedy_columns(main.columns):
            for r in main.to_dict("records"):
                vs = paired[
                    (paired["method"] == r["method"]) & (paired["versus"] == "RFT") & (paired["metric"] == metric)
                ]
                d = vs.iloc[0] if len(vs) else None
                rows.append(
                    {
                        **base,
                        "column": column_name(e["model"], e["dataset"], metric),
                        "metric": metric,
                        "method": _method_key(r["method"]),
                        "value": r[metric],
                        "lower": r[f"{metric} lower"],
                        "upper": r[f"{metric} upper"],
                        "marker": r[f"{metric} marker"] if isinstance(r.get(f"{metric} marker"), str) else "",
                        "vs RFT": None if d is None else d["difference"],
                        "vs RFT lower": None if d is None else d["lower"],
                        "vs RFT upper": None if d is None else d["upper"],
                        "vs RFT distinguishable": None if d is None else bool(d["distinguishable"]),
                    }
                )
    return pd.DataFrame(rows)


def wide(long, columns: list[str]):
    """The paper's layout: one row per method, for every column (model / dataset (benchmark)) its value,
    interval, marker and difference to RFT (CSV: own columns; ``shown`` folds them into one cell)."""
    import pandas as pd

    has = "method" in long.columns  # not when every experiment is missing
    found = list(long["method"].dropna().unique()) if has else []
    methods = [m for m in ORDER if m in found] + [m for m in found if m not in ORDER] or ORDER
    rows = []
    for m in methods:
        row = {"method": METHOD_LABELS.get(m, m)}
        for col in columns:
            hit = long[(long["column"] == col) & (long["method"] == m)] if has else long.iloc[0:0]
            r = hit.iloc[0] if len(hit) else None
            for suffix in ("", " lower", " upper", " marker", " vs RFT", " vs RFT lower", " vs RFT upper"):
                key = "value" if suffix == "" else suffix.strip()
                row[col + suffix] = None if r is None else r[key]
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(row, col: str, gap: str) -> str:
    v = row[col]
    if v is None or v != v:
        return gap
    cell = f"{v:.1f} [{row[col + ' lower']:.1f}, {row[col + ' upper']:.1f}]{row[col + ' marker'] or ''}"
    d = row[col + " vs RFT"]
    if d is not None and d == d:
        cell += f" ({d:+.1f} vs RFT)"
    return cell


def shown(table, columns: list[str], status: dict[str, tuple[str, str]]):
    """The table as Markdown / LaTeX show it: a gap names its missing experiment; a stale column is flagged
    in its header."""
    import pandas as pd

    out = {"method": list(table["method"])}
    for col in columns:
        name, st = status[col]
        gap = f"— (missing: {name})" if st == MISSING else "—"
        header = col + (" [STALE]" if st == STALE else "")
        out[header] = [_cell(r, col, gap) for r in table.to_dict("records")]
    return pd.DataFrame(out)


def write_main(long, entries: list[dict], csv: str, md: str, tex: str, caption: str) -> list[str]:
    """main.{csv,md,tex}: the CSV in the paper's layout with full precision (intervals and the difference to
    RFT as their own columns); Markdown and LaTeX with one cell per model / dataset. Returns the columns."""
    columns = list(dict.fromkeys(long["column"]))
    status = {}
    for r in long.to_dict("records"):
        status[r["column"]] = (r["experiment"], r["status"])
    table = wide(long, columns)
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    notes = [
        f"- {c}: experiment `{n}` {st}" + (f" ({e['reason']})" if (e := _entry(entries, n)).get("reason") else "")
        for c, (n, st) in status.items()
    ]
    display = shown(table, columns, status)
    write_text(md, display.to_markdown(index=False) + f"\n\n{caption}\n\n" + "\n".join(notes) + "\n")
    write_table(display, csv + ".shown.tmp", md + ".shown.tmp", tex, caption)  # LaTeX (booktabs) of the shown table
    for f in (csv + ".shown.tmp", md + ".shown.tmp"):
        Path(f).unlink(missing_ok=True)
    return columns


def _entry(entries, name):
    return next((e for e in entries if e["name"] == name), {})


def claim_points(long, rd: dict[str, dict]):
    """Per experiment (model, dataset), on its headline benchmark: the base model's greedy pass@1 and GiFT's
    paired gain over RFT (from the experiment's comparison_paired table) and over RFT+RD (``rd``: experiment ->
    paired bootstrap of GiFT minus RFT+RD, :func:`gift.stats.paired_bootstrap` with the experiment's seed)."""
    import pandas as pd

    rows = []
    ok = long[long["status"] != MISSING]
    for exp, g in ok.groupby("experiment", sort=False):
        metric = g["metric"].iloc[0]  # the headline (first) greedy column of the experiment's table
        g = g[g["metric"] == metric].set_index("method")
        if "base" not in g.index or "gift" not in g.index:
            continue
        row = {"model": g["model"].iloc[0], "dataset": g["dataset"].iloc[0], "experiment": exp, "metric": metric}
        row["base pass@1"] = g.loc["base", "value"]
        row["GiFT - RFT"], row["GiFT - RFT lower"], row["GiFT - RFT upper"] = (
            g.loc["gift", c] for c in ("vs RFT", "vs RFT lower", "vs RFT upper")
        )
        r = rd.get(exp)
        row["GiFT - RFT+RD"], row["GiFT - RFT+RD lower"], row["GiFT - RFT+RD upper"] = (
            (100 * r["difference"], 100 * r["lower"], 100 * r["upper"]) if r else (float("nan"),) * 3
        )
        rows.append(row)
    cols = ["model", "dataset", "experiment", "metric", "base pass@1"]
    cols += [f"GiFT - {ref}{s}" for ref in ("RFT", "RFT+RD") for s in ("", " lower", " upper")]
    return pd.DataFrame(rows, columns=cols)


def gain_over_rd(entry: dict, metric: str) -> dict | None:
    """GiFT minus RFT+RD on the same problems (paired bootstrap with the experiment's own b and seed)."""
    from .io import read_jsonl
    from .stats import paired_bootstrap
    from .tables import problem_values

    ev = Path(entry["dir"]) / "eval"
    vals = {}
    for m in ("gift", "rft_rd"):
        if not (ev / m / "scores.json").exists():
            return None
        vals[m] = problem_values(read_json(ev / m / "scores.json"), read_jsonl(ev / m / "per_problem.jsonl"))[metric]
    common = [t for t in vals["gift"] if t in vals["rft_rd"]]
    return paired_bootstrap(
        [vals["gift"][t] for t in common], [vals["rft_rd"][t] for t in common], b=entry["b"], seed=entry["seed"]
    )


def figure_claim(points, path: str) -> None:
    """GiFT's gain over RFT and over RFT+RD (paired 95 % intervals) against the base model's pass rate, one
    point per model and dataset: the paper's claim is that the gain grows on harder datasets (left)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import _save

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhline(0, color="grey", lw=0.8)
    for ref, color, dx in (("RFT", "C0", -0.4), ("RFT+RD", "C1", 0.4)):
        col = f"GiFT - {ref}"
        for shape, (model, g) in zip("osD^v", points.groupby("model", sort=False), strict=False):
            g = g.dropna(subset=[col])
            if not len(g):
                continue
            err = [g[col] - g[f"{col} lower"], g[f"{col} upper"] - g[col]]
            ax.errorbar(
                g["base pass@1"] + dx, g[col], yerr=err, fmt=shape, color=color, capsize=3, label=f"over {ref}, {model}"
            )
            for x, y, name in zip(g["base pass@1"] + dx, g[col], g["dataset"], strict=True):
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("Base model's greedy pass@1 on the dataset (%)")
    ax.set_ylabel("GiFT's gain (percentage points)")
    ax.set_title("Gain of GiFT against dataset difficulty (paired 95 % intervals)", fontsize=9)
    if points.shape[0]:
        ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


def published_rows(long, published):
    """The runs' headline greedy pass@1 beside the published cells (gift.published.compare): one row per
    published cell, then every run cell the paper has no number for (``not in the paper``)."""
    import pandas as pd

    from .published import compare

    ok = long[long["status"] != MISSING]
    first = ok.groupby("experiment", sort=False)["metric"].transform("first") if len(ok) else []
    head = ok[ok["metric"] == first] if len(ok) else ok
    ours = pd.DataFrame(
        {
            "model": head.get("model", []),
            "dataset": head.get("dataset", []),
            "method": head.get("method", []),
            "metric": "pass@1",
            "value": head.get("value", []),
            "run": head.get("experiment", []),
        }
    )
    keys = ["model", "dataset", "method", "metric", "run"]
    return compare(published, ours.astype({k: object for k in keys}), include_unpublished=True)
