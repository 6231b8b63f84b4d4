"""Published numbers of the GiFT paper, and their comparison with this workflow's runs.

``data/published/results.csv`` holds only numbers read in the paper's own text, one row per table
cell: ``table, page, model, dataset, method, metric, value, source_note`` (see docs/paper-map.md
for what could and could not be read). :func:`compare` joins them with a run's numbers; a published
cell that no run of this workflow covers says ``needs paper-scale run`` and gets no number.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

COLUMNS = ["table", "page", "model", "dataset", "method", "metric", "value", "source_note"]
KEYS = ["model", "dataset", "method", "metric"]
NEEDS_RUN = "needs paper-scale run"
NOT_PUBLISHED = "not in the paper"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "published" / "results.csv"


NOTHING_PUBLISHED = (
    "No published number of the GiFT paper is recorded (data/published/results.csv holds none; "
    "docs/paper-map.md says how to add them), so this run is compared with nothing."
)
SHOWN = ["model", "dataset", "method", "metric", "published", "this run", "difference"]


def has_published_numbers(path: str | Path = DEFAULT_PATH) -> bool:
    """Whether the published-numbers CSV holds at least one row (read with the standard library: the
    workflow asks when it loads)."""
    import csv

    try:
        with open(path, newline="") as f:
            return any(any(cell.strip() for cell in row) for row in list(csv.reader(f))[1:])
    except FileNotFoundError:
        return False


def comparison_rows(published_df, ours_df):
    """The comparison table: one row per published cell (``SHOWN`` columns), this run's number beside it or
    ``needs paper-scale run``; no row for a cell the paper has no number for (an empty table when nothing
    is published: the caller writes :data:`NOTHING_PUBLISHED` instead)."""
    import pandas as pd

    m = compare(published_df, ours_df)
    rows = [
        {
            "model": r.model,
            "dataset": r.dataset,
            "method": r.method,
            "metric": r.metric,
            "published": f"{r.published:.1f}",
            "this run": NEEDS_RUN if pd.isna(r.ours) else f"{r.ours:.1f}",
            "difference": "" if pd.isna(r.ours) else f"{r.difference:+.1f}",
        }
        for r in m.itertuples()
    ]
    return pd.DataFrame(rows, columns=SHOWN)


def load_published(path: str | Path = DEFAULT_PATH):
    """The published-numbers CSV as a DataFrame with :data:`COLUMNS` (extra columns are kept).

    Fails with the file name and row when a column is missing, a value is not a number, or a row has
    no source note: every number must say where in the paper it was read."""
    import pandas as pd

    df = pd.read_csv(
        path,
        dtype={
            "table": str,
            "page": str,
            "model": str,
            "dataset": str,
            "method": str,
            "metric": str,
            "source_note": str,
        },
        keep_default_na=False,
    )
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (expected {COLUMNS})")
    values = pd.to_numeric(df["value"].replace("", float("nan")), errors="coerce")
    for i, (raw, v, note) in enumerate(zip(df["value"], values, df["source_note"], strict=True), start=2):
        if pd.isna(v):
            raise ValueError(f"{path}:{i}: value {raw!r} is not a number")
        if not str(note).strip():
            raise ValueError(f"{path}:{i}: no source_note")
    df["value"] = values.astype(float)
    dup = df.duplicated(subset=["table"] + KEYS, keep=False)
    if dup.any():
        raise ValueError(f"{path}: duplicate cells {df.loc[dup, ['table'] + KEYS].values.tolist()[:3]}")
    return df


def ours_from_scores(
    score_files: Iterable[str | Path],
    *,
    model: str,
    dataset: str,
    metric: str = "pass@1",
    score_key: str = "pass@1_greedy",
    percent: bool = True,
    run: str = "",
):
    """This workflow's numbers in the published layout (``model, dataset, method, metric, value, run``)
    from ``eval/<method>/scores.json`` files. The paper reports greedy pass@1 in percent, hence the
    defaults. ``model`` and ``dataset`` must use the published CSV's spelling."""
    import pandas as pd

    from .io import read_json

    rows = []
    for f in score_files:
        s = read_json(f)
        if score_key not in s:
            raise ValueError(f"{f}: no {score_key!r} (has {sorted(s)})")
        rows.append(
            {
                "model": model,
                "dataset": dataset,
                "method": s["model"],
                "metric": metric,
                "value": (100.0 if percent else 1.0) * float(s[score_key]),
                "run": run or str(Path(f).parent.parent.parent),
            }
        )
    return pd.DataFrame(rows, columns=["model", "dataset", "method", "metric", "value", "run"])


def compare(published_df, ours_df, include_unpublished: bool = False):
    """Published vs this workflow, one row per published cell.

    ``ours_df`` has ``model, dataset, method, metric, value`` (and optionally ``run``), spelled as in the
    published CSV. Columns of the result: ``table, model, dataset, method, metric, published, ours,
    difference`` (ours - published), ``run``, ``status``. A published cell without a matching run has
    ``ours`` and ``difference`` empty (NaN) and status ``needs paper-scale run``; nothing is filled in.
    With ``include_unpublished`` the run's cells that the paper has no number for are appended with
    status ``not in the paper``. Several runs of the same cell are an error (pick one first)."""
    import pandas as pd

    ours = ours_df.copy()
    for c in KEYS + ["value"]:
        if c not in ours.columns:
            raise ValueError(f"ours_df lacks column {c!r} (needs {KEYS + ['value']})")
    if "run" not in ours.columns:
        ours["run"] = ""
    dup = ours.duplicated(subset=KEYS, keep=False)
    if dup.any():
        raise ValueError(f"ours_df has several values for {ours.loc[dup, KEYS].drop_duplicates().values.tolist()[:3]}")
    pub = published_df[["table"] + KEYS + ["value"]].rename(columns={"value": "published"})
    ours = ours[KEYS + ["value", "run"]].rename(columns={"value": "ours"})
    m = pub.merge(ours, on=KEYS, how="left")
    m["difference"] = m["ours"] - m["published"]
    m["status"] = m["ours"].map(lambda v: NEEDS_RUN if pd.isna(v) else "compared")
    m["run"] = m["run"].fillna("")
    if include_unpublished:
        extra = ours.merge(pub[KEYS].drop_duplicates(), on=KEYS, how="left", indicator=True)
        extra = extra[extra["_merge"] == "left_only"].drop(columns="_merge")
        if len(extra):
            extra = extra.assign(table="", published=float("nan"), difference=float("nan"), status=NOT_PUBLISHED)
            m = pd.concat([m, extra], ignore_index=True)
    return m[["table"] + KEYS + ["published", "ours", "difference", "run", "status"]]
