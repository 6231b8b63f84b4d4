"""Per-problem selection of the training codes from a scored pool.

``softmax``  draw k codes *with replacement*, weights softmax(temperature * ppl): GiFT favours the
             long tail (high-perplexity codes) of the marginal.
``inverse``  weights softmax(-temperature * ppl), an ablation favouring the mode.
``uniform``  k codes without replacement when the pool holds >= k, with replacement when it holds
             1..k-1, none when it is empty (GiFT without PPL selection, RFT).
"""

from __future__ import annotations

import math
import random

from .seeding import rng


def softmax(xs: list[float], temperature: float) -> list[float]:
    z = [temperature * x for x in xs]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def weights(ppls: list[float], weighting: str, temperature: float) -> list[float]:
    if weighting == "softmax":
        return softmax(ppls, temperature)
    if weighting == "inverse":
        return softmax(ppls, -temperature)
    if weighting == "uniform":
        return [1.0 / len(ppls)] * len(ppls)
    raise ValueError(f"selection.weighting: '{weighting}' (softmax | inverse | uniform)")


def draw(items: list, ppls: list[float], k: int, weighting: str, temperature: float, r: random.Random) -> list:
    if not items:
        return []
    if weighting == "uniform":
        if len(items) >= k:
            return r.sample(items, k)
        return r.choices(items, k=k)  # the authors' call: random.choices(codes, k=K)
    return r.choices(items, weights=weights(ppls, weighting, temperature), k=k)


def select(scored: list[dict], *, k: int, weighting: str, temperature: float, seed: int, method: str) -> list[dict]:
    by_task: dict[str, list[dict]] = {}
    for row in scored:
        by_task.setdefault(row["task_id"], []).append(row)
    out = []
    for tid in sorted(by_task):
        rows = by_task[tid]
        ppls = [r["ppl"] for r in rows]
        w = weights(ppls, weighting, temperature)
        chosen = draw(list(range(len(rows))), ppls, k, weighting, temperature, rng(seed, "select", method, tid))
        for i in chosen:
            out.append({**rows[i], "method": method, "weight": w[i]})
    return out
