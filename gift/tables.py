"""Tables, read only from result files, with what is signal in them: every pass@k cell carries a 95 %
bootstrap interval over the test problems, and fine-tuned methods are compared with the base model and
with RFT problem by problem (``gift.stats``).

CSV files keep full precision, with ``<column> lower`` / ``<column> upper`` beside a cell that has an
interval; Markdown and LaTeX show ``36.7 [21.7, 51.7]``, with a marker where a paired difference is
distinguishable from noise (``MARKERS``).
"""

from __future__ import annotations

from pathlib import Path

from .io import atomic_path, read_json, read_jsonl, write_text
from .metrics import pass_at_k
from .stats import bootstrap_ci, mcnemar_exact, paired_bootstrap

METHOD_LABELS = {
    "base": "Base model",
    "rft": "RFT",
    "rft_rd": "RFT+RD",
    "gift_noppl": "GiFT w/o PPL selection",
    "gift": "GiFT",
}
# markers in the main table: the paired 95 % interval of the difference excludes 0
MARKERS = {"base": "†", "rft": "‡"}
PAIRED_CAPTION = (
    "Paired comparisons on the same test problems: difference of the fine-tuned method minus the reference "
    "(percentage points) with its 95 % paired bootstrap interval over problems (10,000 resamples) and "
    "bootstrap p-value; for greedy pass@1 also McNemar's exact test (problems solved by one model only)."
)


def label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _sampled_keys(scores: dict) -> list[str]:
    return sorted((k for k in scores if k.startswith("pass@") and k != "pass@1_greedy"), key=lambda k: int(k[5:]))


def problem_values(scores: dict, per_problem: list[dict]) -> dict[str, dict[str, float]]:
    """Per-problem value (0..1) of every metric the main table shows, keyed by its column name, then by
    task id: greedy pass/fail, and per-problem pass@k (for an EvalPlus test set both benchmarks, e.g.
    MBPP from the base inputs and MBPP+ from base + plus inputs)."""
    out: dict[str, dict[str, float]] = {}
    groups = list(scores["benchmarks"].items()) if scores.get("benchmarks") else [("", scores)]
    for bench, sc in groups:
        pre = f"{bench} " if bench else ""
        headline = not bench or bench == scores.get("headline")
        out[f"{pre}pass@1 (greedy)"] = {
            r["task_id"]: float(r["greedy_passed"] if headline else r["greedy_passed_base"]) for r in per_problem
        }
        for key in _sampled_keys(sc):
            k = int(key[5:])
            out[f"{pre}{key} (sampled)"] = {
                r["task_id"]: (r[key] if headline else pass_at_k(r["n"], r["c_base"], k)) for r in per_problem
            }
    return out


def _load(score_files: list[str], per_problem_files: list[str]) -> dict[str, tuple[dict, dict]]:
    """model -> (scores, per-problem values by metric)."""
    out = {}
    for sf, pf in zip(score_files, per_problem_files, strict=True):
        s = read_json(sf)
        out[s["model"]] = (s, problem_values(s, read_jsonl(pf)))
    return out


def _interval_columns(row: dict, values: dict[str, dict[str, float]], b: int, seed: int) -> None:
    for col, by_task in values.items():
        mean, lo, hi = bootstrap_ci(list(by_task.values()), b=b, seed=seed)
        row[col], row[f"{col} lower"], row[f"{col} upper"] = 100 * mean, 100 * lo, 100 * hi


DATASET_NAMES = {
    "mbpp": "MBPP",
    "mbppplus": "MBPP+",
    "humaneval": "HumanEval",
    "humanevalplus": "HumanEval+",
    "codeinsight": "CodeInsight",
    "apps": "APPS",
    "appsplus": "APPS+",
}


def benchmarks_scored(columns) -> list[str]:
    """The benchmarks a table's columns score, in order (``MBPP+ pass@1 (greedy)`` -> ``MBPP+``); ``[]``
    when the columns carry no benchmark name (a test set scored by its own tests)."""
    out: list[str] = []
    for col in columns:
        head, sep, _ = str(col).partition(" pass@")
        if sep and head and head not in out:
            out.append(head)
    return out


def main_caption(columns, n: int, test_dataset: str, experiment: str, b: int) -> str:
    """The main table's caption: the test set and the benchmark(s) its cells score (an MBPP+ test set is
    scored as MBPP+ and as MBPP, EvalPlus's way)."""
    name = DATASET_NAMES.get(test_dataset, test_dataset)
    scored = benchmarks_scored(columns)
    if len(scored) > 1:  # EvalPlus's two benchmarks: the plus one from base + plus inputs
        how = ", scored as " + " and as ".join(
            f"{s} ({'base + plus inputs' if s.endswith('+') else 'base inputs'})" for s in scored
        )
    else:
        how = f", scored as {scored[0]}" if scored else f", scored by each problem's {name} tests"
    return (
        f"Pass rates (%) on {n} held-out {name} problems{how}, experiment {experiment}, with 95 % bootstrap "
        f"intervals over problems ({b} resamples). {MARKERS['base']} / {MARKERS['rft']}: the paired 95 % "
        "bootstrap interval of the difference to the base model / RFT excludes 0 (tables/comparison_paired)."
    )


def main_table(score_files: list[str], per_problem_files: list[str], *, b: int = 10000, seed: int = 0):
    """One row per model, one column per metric (percent) with its bootstrap interval over problems, and a
    marker column per metric: † / ‡ where the paired interval against the base model / RFT excludes 0."""
    import pandas as pd

    models = _load(score_files, per_problem_files)
    rows = []
    for m, (s, values) in models.items():
        row = {"method": label(m), "problems": s["n_problems"]}
        _interval_columns(row, values, b, seed)
        for col in values:
            row[f"{col} marker"] = "".join(
                sym
                for ref, sym in MARKERS.items()
                if ref in models
                and ref != m
                and m != "base"
                and _excludes_zero(values[col], models[ref][1][col], b, seed)
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _pp(x: float) -> float:
    """A difference in percentage points, without a negative zero from floating-point noise."""
    return round(100 * x, 9) + 0.0


def _paired(a: dict[str, float], b_: dict[str, float]) -> tuple[list[float], list[float]]:
    common = [t for t in a if t in b_]
    return [a[t] for t in common], [b_[t] for t in common]


def _excludes_zero(a: dict, b_: dict, b: int, seed: int) -> bool:
    r = paired_bootstrap(*_paired(a, b_), b=b, seed=seed)
    return r["lower"] > 0 or r["upper"] < 0


def paired_table(
    score_files: list[str],
    per_problem_files: list[str],
    *,
    references=("base", "rft"),
    b: int = 10000,
    seed: int = 0,
    values: dict | None = None,
):
    """Every fine-tuned method against each reference model, metric by metric, paired by problem (``values``:
    model -> (scores, per-problem values) instead of files)."""
    import pandas as pd

    models = values if values is not None else _load(score_files, per_problem_files)
    rows = []
    for m, (_, values) in models.items():
        for ref in references:
            if m == "base" or ref == m or ref not in models:
                continue
            for col, by_task in values.items():
                x, y = _paired(by_task, models[ref][1][col])
                r = paired_bootstrap(x, y, b=b, seed=seed)
                row = {
                    "method": label(m),
                    "versus": label(ref),
                    "metric": col,
                    "problems": r["n"],
                    "difference": _pp(r["difference"]),
                    "lower": _pp(r["lower"]),
                    "upper": _pp(r["upper"]),
                    "bootstrap p": r["p"],
                    "distinguishable": bool(r["lower"] > 0 or r["upper"] < 0),
                }
                if "(greedy)" in col:
                    mc = mcnemar_exact([v > 0.5 for v in x], [v > 0.5 for v in y])
                    row.update(
                        {
                            "solved by method only": mc["only_a"],
                            "solved by reference only": mc["only_b"],
                            "McNemar exact p": mc["p"],
                        }
                    )
                rows.append(row)
    return pd.DataFrame(rows)


def _by_seed(score_files: list[str], per_problem_files: list[str]) -> dict[str, dict[str, tuple[dict, dict]]]:
    """seed folder name (``seed<k>``) -> model -> (scores, per-problem values)."""
    out: dict[str, dict] = {}
    for sf, pf in zip(score_files, per_problem_files, strict=True):
        seed = next(p for p in Path(sf).parts if p.startswith("seed") and p[4:].isdigit())
        out.setdefault(seed, {}).update(_load([sf], [pf]))
    return out


def replicates_table(score_files: list[str], per_problem_files: list[str]):
    """Across replicate seeds (``results/<exp>/seed<k>/``): per model and metric the mean over seeds and the
    standard deviation between them (percent), and the number of seeds."""
    import statistics

    import pandas as pd

    runs = _by_seed(score_files, per_problem_files)
    models = list(next(iter(runs.values())))
    rows = []
    for m in models:
        per_seed = [runs[s][m][1] for s in runs if m in runs[s]]
        row = {"method": label(m), "seeds": len(per_seed), "problems": len(next(iter(per_seed[0].values())))}
        for col in per_seed[0]:
            vals = [100 * sum(v[col].values()) / len(v[col]) for v in per_seed]
            row[col] = statistics.fmean(vals)
            row[f"{col} sd"] = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def replicates_paired_table(
    score_files: list[str], per_problem_files: list[str], *, references=("base", "rft"), b: int = 10000, seed: int = 0
):
    """The paired comparisons pooled over seeds: a pair is (seed, problem), resampled together."""
    runs = _by_seed(score_files, per_problem_files)
    pooled: dict[str, dict[str, dict[str, float]]] = {}
    for s, models in runs.items():
        for m, (_, values) in models.items():
            for col, by_task in values.items():
                pooled.setdefault(m, {}).setdefault(col, {}).update({f"{s}:{t}": v for t, v in by_task.items()})
    df = paired_table([], [], references=references, b=b, seed=seed, values={m: ({}, v) for m, v in pooled.items()})
    df.insert(2, "seeds", len(runs))
    return df


def epochs_table(score_files: list[str], epochs: int):
    """Per fine-tuned method, one row per epoch (``<method>@epoch<k>`` score files; the method's own file is
    the last epoch), one column per metric: how the score moves over training, as the authors report it."""
    import pandas as pd

    rows = []
    for f in score_files:
        s = read_json(f)
        method, _, ep = s["model"].partition("@epoch")
        row = {"method": label(method), "epoch": int(ep) if ep else epochs, "problems": s["n_problems"]}
        groups = list(s["benchmarks"].items()) if s.get("benchmarks") else [("", s)]
        for bench, sc in groups:
            pre = f"{bench} " if bench else ""
            row[f"{pre}pass@1 (greedy)"] = 100 * sc["pass@1_greedy"]
            for key in _sampled_keys(sc):
                row[f"{pre}{key} (sampled)"] = 100 * sc[key]
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["method", "epoch"], kind="stable").reset_index(drop=True)


def selection_table(
    methods: dict,
    T: int,
    score_files: list[str],
    selected_files: list[str],
    ppl_files: list[str],
    per_problem_files: list[str] | None = None,
    *,
    b: int = 10000,
    seed: int = 0,
):
    """The selection ablation (and the effect of the number of Gibbs iterations): one row per fine-tuned
    method with how its training codes were drawn (pool, weighting, temperature, iterations of the chain
    used), what was drawn (codes, distinct codes after AST normalisation, mean PPL and iteration of the
    drawn codes, share drawn from the pool's upper PPL quartile per problem: the long tail the paper's
    selection favours) and the headline scores with their bootstrap intervals. Reads only result files."""
    import pandas as pd

    from .normalize import normalize_code

    pools = {Path(f).stem: read_jsonl(f) for f in ppl_files}
    scores = {
        read_json(f)["model"]: (read_json(f), pf)
        for f, pf in zip(score_files, per_problem_files or [None] * len(score_files), strict=True)
    }
    selected = {Path(f).stem: read_jsonl(f) for f in selected_files}
    rows = []
    for m, spec in methods.items():
        sel = selected.get(m, [])
        pool = pools.get(spec["pool"], [])
        q75 = {}
        for tid in {r["task_id"] for r in pool}:
            ppls = sorted(r["ppl"] for r in pool if r["task_id"] == tid)
            q75[tid] = ppls[int(0.75 * (len(ppls) - 1))] if len(ppls) > 1 else float("inf")
        sc, pf = scores.get(m, ({}, None))
        row = {
            "method": label(m),
            "pool": spec["pool"],
            "weighting": spec["weighting"],
            "temperature": spec.get("temperature", 2.0) if spec["weighting"] == "softmax" else float("nan"),
            "iterations": spec.get("iterations") or T,
            "selected": len(sel),
            "distinct selected": len({(r["task_id"], normalize_code(r["code"])) for r in sel}),
            "mean PPL selected": sum(r["ppl"] for r in sel) / len(sel) if sel else float("nan"),
            "upper-quartile share": (
                sum(r["ppl"] > q75.get(r["task_id"], float("inf")) for r in sel) / len(sel) if sel else float("nan")
            ),
            "mean iteration selected": sum(r.get("iteration", 0) for r in sel) / len(sel) if sel else float("nan"),
        }
        row["pass@1 (greedy)"] = 100 * sc["pass@1_greedy"] if "pass@1_greedy" in sc else float("nan")
        for key in _sampled_keys(sc):
            row[f"{key} (sampled)"] = 100 * sc[key]
        if pf:  # the headline benchmark's intervals (MBPP+ on an EvalPlus test set)
            values = problem_values(sc, read_jsonl(pf))
            head = f"{sc['headline']} " if sc.get("benchmarks") else ""
            _interval_columns(row, {c[len(head) :]: v for c, v in values.items() if c.startswith(head)}, b, seed)
        rows.append(row)
    return pd.DataFrame(rows)


def _shown(df):
    """The table as displayed: a cell with an interval as ``36.7 [21.7, 51.7]`` (and its marker), numbers with
    one decimal; the lower / upper / marker columns folded in."""
    from pandas.api.types import is_numeric_dtype

    shown = df.copy()
    for c in df.columns:
        if c.endswith((" lower", " upper", " marker", " sd")):
            continue
        if f"{c} sd" in df.columns:
            shown[c] = [f"{v:.1f} ± {sd:.1f}" for v, sd in zip(df[c], df[f"{c} sd"], strict=True)]
        elif f"{c} lower" in df.columns:
            marks = df[f"{c} marker"] if f"{c} marker" in df.columns else [""] * len(df)
            shown[c] = [
                f"{v:.1f} [{lo:.1f}, {hi:.1f}]{mk}" if v == v else "nan"
                for v, lo, hi, mk in zip(df[c], df[f"{c} lower"], df[f"{c} upper"], marks, strict=True)
            ]
        elif not is_numeric_dtype(df[c]) or df[c].dtype == bool:
            continue
        elif "pass@" in c or c in ("difference", "lower", "upper"):
            shown[c] = df[c].map("{:.1f}".format)
        elif c.endswith(" p"):
            shown[c] = df[c].map(lambda p: "nan" if p != p else ("<0.001" if p < 0.001 else f"{p:.3f}"))
    return shown[[c for c in df.columns if not c.endswith((" lower", " upper", " marker", " sd"))]]


def write_table(df, csv: str, md: str, tex: str | None, caption: str) -> None:
    """CSV (full precision, intervals as their own columns), Markdown and LaTeX (booktabs; skipped when
    ``tex`` is None) of one table; the caption goes under the Markdown table too."""
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4g")
    shown = _shown(df)
    write_text(md, shown.to_markdown(index=False, floatfmt=".3g") + f"\n\n{caption}\n")
    if tex is None:
        return
    cols = "l" + "r" * (len(shown.columns) - 1)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(_tex(c) for c in shown.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_tex(str(v)) for v in r) + r" \\" for r in shown.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex(caption)}}}", r"\end{table}"]
    write_text(tex, "\n".join(lines) + "\n")


def _tex(s: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("†", r"$^\dagger$"),
        ("‡", r"$^\ddagger$"),
    ):
        s = s.replace(a, b)
    return s
