"""Figures and the run summary, read only from result files (tables: gift.tables)."""

from __future__ import annotations

from pathlib import Path

from .io import atomic_path, read_json, read_jsonl
from .tables import label


def iteration_pass_rates(test_files: list[str]):
    import pandas as pd

    rows = []
    for f in test_files:
        res = read_jsonl(f)
        pool = Path(f).parent.parent.name
        it = int(Path(f).parent.name.removeprefix("iter"))
        n = len(res)
        rows.append(
            {
                "pool": pool,
                "iteration": it,
                "samples": n,
                "passed": sum(r["passed"] for r in res),
                "pass_rate": sum(r["passed"] for r in res) / n if n else 0.0,
                "problems_solved": len({r["task_id"] for r in res if r["passed"]}),
            }
        )
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


PPL_CONDITION = {
    "chain": "the description that produced it (ppl.condition: chain)",
    "seed": "the seed description (ppl.condition: seed)",
}


def ppl_axis_label(condition: str) -> str:
    """The PPL axis's label, naming what the perplexity is conditioned on (``ppl.condition``)."""
    return f"Perplexity of the code under {PPL_CONDITION[condition]}"


def figure_ppl(ppl_files: list[str], path: str, condition: str = "chain") -> None:
    """PPL of every pooled code, one row per pool: box plot with every code as a point (readable for
    pools of 3 codes and of 30,000); the axis names ``condition`` (``ppl.condition``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = {
        "gibbs": "GiFT pool\n(Gibbs chain)",
        "rft": "RFT pool\n(seed description)",
        "rft_rd": "RFT+RD pool\n(rewritten descriptions)",
    }
    groups = []
    for f in ppl_files:
        scored = read_jsonl(f)
        groups.append((f"{names.get(Path(f).stem, Path(f).stem)}\nn = {len(scored)}", scored))
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    _ppl_rows(ax, groups, "no passing code in either pool")
    ax.set_xlabel(ppl_axis_label(condition))
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
    out = {
        "passing_samples_per_iteration": {},
        "pool_sizes": {},
        "pool_problems_covered": {},
        "selected_sizes": {},
        "scores": {},
    }
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
        ax.text(
            k,
            int(total[f"{p}_distinct"]),
            f"{int(total[f'{p}_distinct'])} of {int(total[f'{p}_codes'])}",
            ha="center",
            va="bottom",
        )
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


def iterations_panel_note(iterations) -> str:
    """What the "number of iterations" panel needs when it cannot be drawn (``""`` when it can): methods on
    the Gibbs pool with at least two different ``iterations`` values, else one point says nothing."""
    used = sorted({int(v) for v in iterations})
    if len(used) >= 2:
        return ""
    have = f"all methods use {used[0]} iteration(s)" if used else "no method trains on the Gibbs pool"
    return (
        f"Not drawn: {have}.\nThe effect of the number of iterations needs methods\nwith at least two "
        "values of `iterations`\n(e.g. config/ablations/iterations.yaml)."
    )


def figure_selection(df, selected_files: list[str], path: str, condition: str = "chain") -> None:
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
    a.set_xlabel(f"PPL of the drawn code (ppl.condition: {condition})")
    a.set_ylabel("")
    a.set_title("Training codes drawn by each selection")
    g = df[df["pool"] == "gibbs"].copy()
    note = iterations_panel_note(g["iterations"] if len(g) else [])
    if note:
        b.text(0.5, 0.5, note, ha="center", va="center", wrap=True, fontsize=9, transform=b.transAxes)
        b.set_xticks([])
        b.set_yticks([])
    else:
        g["selection"] = g.apply(
            lambda r: r["weighting"] + (f" T={r['temperature']:g}" if r["weighting"] == "softmax" else ""), axis=1
        )
        # methods that share a point (same iterations, same score) are dodged sideways a little, so each is visible
        sels = list(dict.fromkeys(g["selection"]))
        width = 0.3 if len(sels) > 1 else 0.0
        g["x"] = g["iterations"] + [
            width * (sels.index(v) / max(1, len(sels) - 1) - 0.5) if width else 0.0 for v in g["selection"]
        ]
        sns.lineplot(data=g.sort_values("iterations"), x="x", y="pass@1 (greedy)", hue="selection", marker="o", ax=b)
        b.set_xticks(sorted(g["iterations"].unique()))
        b.legend(title=None, fontsize=8)
        b.set_xlabel("Gibbs iterations used")
        b.set_ylabel("pass@1, greedy (%)")
    b.set_title("Effect of the number of iterations")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def figure_scores(df, path: str) -> None:
    """Each method's scores with their 95 % bootstrap intervals over problems, one panel per metric (the
    main table's cells; an EvalPlus test set shows its headline benchmark, e.g. MBPP+)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    metrics = [c for c in df.columns if "pass@" in c and f"{c} lower" in df.columns]
    plus = [c for c in metrics if c.split(" pass@")[0].endswith("+")]
    metrics = plus or metrics
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.6 * len(metrics), 0.8 + 0.45 * len(df)), sharey=True, squeeze=False
    )
    colors = sns.color_palette(n_colors=len(df))
    for ax, m in zip(axes[0], metrics, strict=True):
        for k, row in enumerate(df.itertuples(index=False)):
            r = dict(zip(df.columns, row, strict=True))
            ax.errorbar(
                r[m], k, xerr=[[r[m] - r[f"{m} lower"]], [r[f"{m} upper"] - r[m]]], fmt="o", color=colors[k], capsize=3
            )
        ax.set_yticks(range(len(df)))
        ax.set_yticklabels(df["method"])
        ax.invert_yaxis()
        ax.set_xlim(-2, 102)
        ax.set_xlabel(f"{m} (%)")
    axes[0][0].set_title(
        f"95 % bootstrap intervals over {int(df['problems'].iloc[0])} problems", loc="left", fontsize=9
    )
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def figure_training_loss(checkpoints: list[str], path: str) -> None:
    """The training loss at every optimizer step, one line per method (each checkpoint's train_stats.json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for ck in checkpoints:
        stats = read_json(str(Path(ck) / "train_stats.json"))
        hist = stats.get("history") or []
        ax.plot([h["step"] + 1 for h in hist], [h["loss"] for h in hist], marker=".", label=label(Path(ck).name))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (code tokens)")
    ax.set_title("Fine-tuning loss per method")
    ax.legend(title=None, fontsize=8)
    _save(fig, path)
    plt.close(fig)
