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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip("."), dpi=150, bbox_inches="tight")


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
    import pandas as pd
    import seaborn as sns

    names = {"gibbs": "GiFT pool\n(Gibbs chain)", "rft": "RFT pool\n(seed description)", "rft_rd": "RFT+RD pool\n(rewritten descriptions)"}
    rows, order = [], []
    for f in ppl_files:
        scored = read_jsonl(f)
        label = f"{names.get(Path(f).stem, Path(f).stem)}\nn = {len(scored)}"
        order.append(label)
        rows += [{"pool": label, "ppl": r["ppl"]} for r in scored]
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if rows:
        df = pd.DataFrame(rows)
        sns.boxplot(data=df, x="ppl", y="pool", order=order, hue="pool", hue_order=order, legend=False, whis=(0, 100),
                    fliersize=0, width=0.5, boxprops={"alpha": 0.35}, ax=ax)
        sns.stripplot(data=df, x="ppl", y="pool", order=order, hue="pool", hue_order=order, legend=False, size=4,
                      jitter=0.15, alpha=0.8, ax=ax)
    else:
        ax.text(0.5, 0.5, "no passing code in either pool", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Perplexity of the code under the seed description")
    ax.set_ylabel("")
    ax.set_title("PPL of the pooled codes (higher: longer tail)")
    _save(fig, path)
    plt.close(fig)


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
