"""Tables and figures, read only from result files."""

from __future__ import annotations

import json
from pathlib import Path

from .io import atomic_path, read_json, read_jsonl, write_text

METHOD_LABELS = {"base": "Base model", "rft": "RFT", "rft_rd": "RFT+RD", "gift_noppl": "GiFT w/o PPL selection", "gift": "GiFT"}


def label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def main_table(score_files: list[str]):
    """One row per method, one column per metric (percent)."""
    import pandas as pd

    rows = []
    for f in score_files:
        s = read_json(f)
        row = {"method": label(s["model"]), "problems": s["n_problems"]}
        # EvalPlus test sets carry two benchmarks (e.g. MBPP and MBPP+): one column group each
        groups = list(s["benchmarks"].items()) if s.get("benchmarks") else [("", s)]
        for bench, sc in groups:
            pre = f"{bench} " if bench else ""
            row[f"{pre}pass@1 (greedy)"] = 100 * sc["pass@1_greedy"]
            for key in sorted((k for k in sc if k.startswith("pass@") and k != "pass@1_greedy"), key=lambda k: int(k[5:])):
                row[f"{pre}{key} (sampled)"] = 100 * sc[key]
        rows.append(row)
    return pd.DataFrame(rows)


def epochs_table(score_files: list[str], epochs: int):
    """Per fine-tuned method, one row per epoch (``<method>@epoch<k>`` score files; the method's own file is
    the last epoch), one column per metric: how the score moves over training, as the authors report it."""
    df = main_table(score_files)
    models = [read_json(f)["model"] for f in score_files]
    df.insert(1, "epoch", [int(m.split("@epoch")[1]) if "@epoch" in m else epochs for m in models])
    df["method"] = [label(m.split("@epoch")[0]) for m in models]
    return df.sort_values(["method", "epoch"], kind="stable").reset_index(drop=True)


def write_table(df, csv: str, md: str, tex: str | None, caption: str) -> None:
    """CSV (full precision), Markdown and LaTeX (booktabs; skipped when ``tex`` is None) of one table."""
    fmt = {c: "{:.1f}".format for c in df.columns if "pass@" in c}
    with atomic_path(csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.2f")
    shown = df.copy()
    for c, f in fmt.items():
        shown[c] = shown[c].map(f)
    write_text(md, shown.to_markdown(index=False, floatfmt=".3g") + "\n")
    if tex is None:
        return
    cols = "l" + "r" * (len(df.columns) - 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(_tex(c) for c in shown.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(str(v)) for v in r) + r" \\" for r in shown.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex(caption)}}}", r"\end{table}"]
    write_text(tex, "\n".join(lines) + "\n")


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        s = s.replace(a, b)
    return s


def iteration_pass_rates(test_files: list[str]):
    import pandas as pd

    rows = []
    for f in test_files:
        res = read_jsonl(f)
        pool = Path(f).parent.parent.name
        it = int(Path(f).parent.name.removeprefix("iter"))
        n = len(res)
        rows.append({"pool": pool, "iteration": it, "samples": n, "passed": sum(r["passed"] for r in res),
                     "pass_rate": sum(r["passed"] for r in res) / n if n else 0.0,
                     "problems_solved": len({r["task_id"] for r in res if r["passed"]})})
    return pd.DataFrame(rows).sort_values(["pool", "iteration"]).reset_index(drop=True)


def _save(fig, path: str) -> None:
    """The figure as ``path`` (PNG) and, beside it, the same figure as PDF (vector, for a paper)."""
    for out in (path, str(Path(path).with_suffix(".pdf"))):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=Path(out).suffix.lstrip("."), dpi=150, bbox_inches="tight")


def figure_iterations(df, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    names = {"gibbs": "Gibbs chain (GiFT)", "rft": "Seed description (RFT)", "rft_rd": "Rewritten description (RFT+RD)"}
    d = df.assign(pool=df["pool"].map(lambda p: names.get(p, p)), pass_rate=100 * df["pass_rate"])
    sns.lineplot(data=d, x="iteration", y="pass_rate", hue="pool", marker="o", ax=ax)
    ax.set_xlabel("Gibbs iteration t")
    ax.set_ylabel("Passing samples (%)")
    ax.set_title("Pass rate of sampled codes per iteration")
    ax.set_xticks(sorted(d["iteration"].unique()))
    ax.legend(title=None)
    _save(fig, path)
    plt.close(fig)


def figure_ppl(ppl_files: list[str], path: str) -> None:
    """PPL of every pooled code, one row per pool: box plot with every code as a point (readable for
    pools of 3 codes and of 30,000)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = {"gibbs": "GiFT pool\n(Gibbs chain)", "rft": "RFT pool\n(seed description)", "rft_rd": "RFT+RD pool\n(rewritten descriptions)"}
    groups = []
    for f in ppl_files:
        scored = read_jsonl(f)
        groups.append((f"{names.get(Path(f).stem, Path(f).stem)}\nn = {len(scored)}", scored))
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    _ppl_rows(ax, groups, "no passing code in either pool")
    ax.set_xlabel("Perplexity of the code under the seed description")
    ax.set_ylabel("")
    ax.set_title("PPL of the pooled codes (higher: longer tail)")
    _save(fig, path)
    plt.close(fig)


def _ppl_rows(ax, groups: list[tuple[str, list[dict]]], empty: str) -> None:
    """One horizontal row per (label, rows with ``ppl``): a box over the range and quartiles with every code
    as a point (readable for 3 codes and for 30,000); ``empty`` is written when no group has a code."""
    import pandas as pd
    import seaborn as sns

    order = [lab for lab, _ in groups]
    pts = [{"group": lab, "ppl": r["ppl"]} for lab, rows in groups for r in rows]
    if not pts:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
        return
    d = pd.DataFrame(pts)
    common = dict(data=d, x="ppl", y="group", order=order, hue="group", hue_order=order, legend=False, ax=ax)
    sns.boxplot(whis=(0, 100), fliersize=0, width=0.5, boxprops={"alpha": 0.35}, **common)
    sns.stripplot(size=4, jitter=0.15, alpha=0.8, **common)


def summary(test_files, pool_files, selected_files, score_files) -> dict:
    it = iteration_pass_rates(test_files)
    out = {"passing_samples_per_iteration": {}, "pool_sizes": {}, "pool_problems_covered": {}, "selected_sizes": {}, "scores": {}}
    for pool, g in it.groupby("pool"):
        out["passing_samples_per_iteration"][pool] = [f"{int(r.passed)}/{int(r.samples)}" for r in g.itertuples()]
    for f in pool_files:
        rows = read_jsonl(f)
        out["pool_sizes"][Path(f).stem] = len(rows)
        out["pool_problems_covered"][Path(f).stem] = len({r["task_id"] for r in rows})
    for f in selected_files:
        out["selected_sizes"][Path(f).stem] = len(read_jsonl(f))
    for f in score_files:
        s = read_json(f)
        out["scores"][s["model"]] = {k: v for k, v in s.items() if k != "model"}
    return out


def figure_analysis(distinct_passing, growth, drift, path: str) -> None:
    """Three panels: distinct passing solutions per sampler; cumulative distinct solutions per iteration;
    similarity of the chain's descriptions to the seed per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    names = {"gibbs": "GiFT (Gibbs chain)", "rft": "RFT (seed description)", "rft_rd": "RFT+RD (rewritten)"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    total = distinct_passing[distinct_passing["task_id"] == "TOTAL"].iloc[0]
    pools = [c[: -len("_distinct")] for c in distinct_passing.columns if c.endswith("_distinct")]
    ax = axes[0]
    bars = [names.get(p, p).replace(" (", "\n(") for p in pools]
    ax.bar(bars, [int(total[f"{p}_distinct"]) for p in pools], color=sns.color_palette()[: len(pools)])
    for k, p in enumerate(pools):
        ax.text(k, int(total[f"{p}_distinct"]), f"{int(total[f'{p}_distinct'])} of {int(total[f'{p}_codes'])}", ha="center", va="bottom")
    ax.set_ylim(0, max([int(total[f"{p}_distinct"]) for p in pools] + [1]) * 1.25)
    ax.set_ylabel("Distinct passing solutions")
    ax.set_title("Diversity at equal sample budget")
    ax.tick_params(axis="x", labelsize=8)
    ax = axes[1]
    if len(growth):
        g = growth.assign(pool=growth["pool"].map(lambda p: names.get(p, p)))
        sns.lineplot(data=g, x="iteration", y="cumulative_distinct", hue="pool", marker="o", ax=ax)
        ax.set_xticks(sorted(g["iteration"].unique()))
        ax.legend(title=None, fontsize=8)
    ax.set_xlabel("Iteration t")
    ax.set_ylabel("Distinct codes in the pool")
    ax.set_title("Pool growth")
    ax = axes[2]
    if len(drift):
        ax.plot(drift["iteration"], drift["jaccard_mean"], marker="o", label="word Jaccard")
        ax.plot(drift["iteration"], drift["rouge_l_mean"], marker="s", label="ROUGE-L F1")
        if drift["embedding_cosine_mean"].notna().any():
            ax.plot(drift["iteration"], drift["embedding_cosine_mean"], marker="^", label="embedding cosine")
        ax.set_xticks(sorted(drift["iteration"].unique()))
        ax.legend(fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("Gibbs iteration t")
    ax.set_ylabel("Similarity to the seed description")
    ax.set_title("Description drift")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def selection_table(methods: dict, T: int, score_files: list[str], selected_files: list[str], ppl_files: list[str]):
    """The selection ablation (and the effect of the number of Gibbs iterations): one row per fine-tuned
    method with how its training codes were drawn (pool, weighting, temperature, iterations of the chain
    used), what was drawn (codes, distinct codes after AST normalisation, mean PPL and iteration of the
    drawn codes, share drawn from the pool's upper PPL quartile per problem: the long tail the paper's
    selection favours) and the score. Reads only result files."""
    import pandas as pd

    from .analysis import normalize_code

    pools = {Path(f).stem: read_jsonl(f) for f in ppl_files}
    scores = {read_json(f)["model"]: read_json(f) for f in score_files}
    selected = {Path(f).stem: read_jsonl(f) for f in selected_files}
    rows = []
    for m, spec in methods.items():
        sel = selected.get(m, [])
        pool = pools.get(spec["pool"], [])
        q75 = {}
        for tid in {r["task_id"] for r in pool}:
            ppls = sorted(r["ppl"] for r in pool if r["task_id"] == tid)
            q75[tid] = ppls[int(0.75 * (len(ppls) - 1))] if len(ppls) > 1 else float("inf")
        sc = scores.get(m, {})
        row = {"method": label(m), "pool": spec["pool"], "weighting": spec["weighting"],
               "temperature": spec.get("temperature", 2.0) if spec["weighting"] == "softmax" else float("nan"),
               "iterations": spec.get("iterations") or T, "selected": len(sel),
               "distinct selected": len({(r["task_id"], normalize_code(r["code"])) for r in sel}),
               "mean PPL selected": sum(r["ppl"] for r in sel) / len(sel) if sel else float("nan"),
               "upper-quartile share": (sum(r["ppl"] > q75.get(r["task_id"], float("inf")) for r in sel) / len(sel)
                                        if sel else float("nan")),
               "mean iteration selected": sum(r.get("iteration", 0) for r in sel) / len(sel) if sel else float("nan")}
        row["pass@1 (greedy)"] = 100 * sc["pass@1_greedy"] if "pass@1_greedy" in sc else float("nan")
        for key in sorted((k for k in sc if k.startswith("pass@") and k != "pass@1_greedy"), key=lambda k: int(k[5:])):
            row[f"{key} (sampled)"] = 100 * sc[key]
        rows.append(row)
    return pd.DataFrame(rows)


def figure_selection(df, selected_files: list[str], path: str) -> None:
    """Two panels: the PPL of every drawn training code per method (what each weighting favours), and
    greedy pass@1 against the number of Gibbs iterations whose codes were used (methods on the Gibbs pool)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.9 + 0.45 * max(3, len(df))), gridspec_kw={"width_ratios": [3, 2]})
    groups = []
    for f in selected_files:
        drawn = read_jsonl(f)
        groups.append((f"{label(Path(f).stem)} (n = {len(drawn)})", drawn))
    _ppl_rows(a, groups, "no training code was drawn")
    a.set_xlabel("PPL of the drawn code under the seed description")
    a.set_ylabel("")
    a.set_title("Training codes drawn by each selection")
    g = df[df["pool"] == "gibbs"].copy()
    if len(g):
        g["selection"] = g.apply(lambda r: r["weighting"] + (f" T={r['temperature']:g}" if r["weighting"] == "softmax" else ""),
                                 axis=1)
        # methods that share a point (same iterations, same score) are dodged sideways a little, so each is visible
        sels = list(dict.fromkeys(g["selection"]))
        width = 0.3 if len(sels) > 1 else 0.0
        g["x"] = g["iterations"] + [width * (sels.index(v) / max(1, len(sels) - 1) - 0.5) if width else 0.0
                                    for v in g["selection"]]
        sns.lineplot(data=g.sort_values("iterations"), x="x", y="pass@1 (greedy)", hue="selection", marker="o", ax=b)
        b.set_xticks(sorted(g["iterations"].unique()))
        b.legend(title=None, fontsize=8)
    b.set_xlabel("Gibbs iterations used")
    b.set_ylabel("pass@1, greedy (%)")
    b.set_title("Effect of the number of iterations")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
