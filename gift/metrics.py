"""pass@k and the one aggregation of per-sample verdicts into per-task counts and mean scores.

A leaf module (imports nothing from ``gift``): ``gift.evaluate`` (the workflow's tables) and
``gift.evalplus`` (EvalPlus-style scoring, its CLI) both aggregate through ``summarise``.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c pass: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def summarise(results: Iterable[dict], ks: Iterable[int], *, order: list[str] | None = None, key: str = "passed"):
    """Per-task counts and mean scores of per-sample ``results`` (``task_id``, ``mode`` greedy | sampled |
    absent, and the verdict under ``key``: True / False, or None where the verdict does not apply).

    Tasks are ``order`` (a task there without results has n = 0), then any other task in the results.
    When some result has a ``mode``, the sampled ones make n and c and the first greedy one the greedy
    verdict; without modes every result is a sample. Per task: ``n``, ``c`` (None if a verdict is None),
    ``greedy`` (None without a greedy result) and ``pass@k`` for k <= n. Scores: ``pass@k`` (mean over
    tasks) for every k that every task has samples for, and ``pass@1_greedy`` when every task has a
    greedy verdict; nothing where a verdict is None. Returns ``(per_task, scores)``."""
    results = list(results)
    by_task: dict[str, list[dict]] = {}
    for r in results:
        by_task.setdefault(r["task_id"], []).append(r)
    order = list(order or [])
    seen = set(order)
    tasks = order + [t for t in by_task if t not in seen]
    with_modes = any(r.get("mode") for r in results)
    per_task = []
    for t in tasks:
        rs = by_task.get(t, [])
        pool = [r for r in rs if r.get("mode") == "sampled"] if with_modes else rs
        greedy = [r for r in rs if r.get("mode") == "greedy"]
        c = None if any(r[key] is None for r in pool) else sum(bool(r[key]) for r in pool)
        row = {
            "task_id": t,
            "n": len(pool),
            "c": c,
            "greedy": None if not greedy or greedy[0][key] is None else bool(greedy[0][key]),
        }
        if c is not None:
            for k in ks:
                if 0 < k <= row["n"]:
                    row[f"pass@{k}"] = pass_at_k(row["n"], c, k)
        per_task.append(row)
    scores: dict = {}
    if per_task:
        n_min = min(r["n"] for r in per_task)
        if all(r["c"] is not None for r in per_task):
            for k in ks:
                if 0 < k <= n_min:
                    scores[f"pass@{k}"] = sum(r[f"pass@{k}"] for r in per_task) / len(per_task)
        if all(r["greedy"] is not None for r in per_task):
            scores["pass@1_greedy"] = sum(r["greedy"] for r in per_task) / len(per_task)
    return per_task, scores
