"""Per-problem selection of the training codes from a scored pool.

``softmax``  draw k codes *with replacement*, weights softmax(temperature * ppl): GiFT favours the
             long tail (high-perplexity codes) of the marginal.
``inverse``  weights softmax(-temperature * ppl), an ablation favouring the mode.
``uniform``  k codes without replacement when the pool holds >= k, with replacement when it holds
             1..k-1, none when it is empty (GiFT without PPL selection, RFT).

The random stream (``selection.stream``):
``per_problem``  one stream per (method, problem), derived from ``seed`` and the names: a problem's draw
                 stays the same when other problems join or leave the set (a resumed or extended run).
``single``       the authors' resampling: ``random.seed(seed)`` once, then every problem in turn draws
                 from that one stream, in the seed problems' own order (``order``: the authors'
                 ``for key in range(len(selfsample))``), each problem's codes in the pool's order
                 (iteration, then sample); the problems without a code draw nothing. Without ``order``,
                 the order in which the pool first lists the problems (the same only when every problem
                 has a code at the first iteration: the pool is built iteration by iteration).
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


STREAMS = ("per_problem", "single")


def select(
    scored: list[dict],
    *,
    k: int,
    weighting: str,
    temperature: float,
    seed: int,
    method: str,
    stream: str = "per_problem",
    order: list[str] | None = None,
) -> list[dict]:
    if stream not in STREAMS:
        raise ValueError(f"selection.stream: '{stream}' ({' | '.join(STREAMS)})")
    by_task: dict[str, list[dict]] = {}
    for row in scored:
        by_task.setdefault(row["task_id"], []).append(row)
    one = random.Random(seed) if stream == "single" else None  # random.seed(seed), as the authors
    if order is not None:
        missing = sorted(set(by_task) - set(order))
        if missing:
            raise ValueError(f"selection: pool problem '{missing[0]}' is not among the seed problems")
    visit = (order if order is not None else list(by_task)) if one else sorted(by_task)
    out = []
    for tid in (t for t in visit if t in by_task):
        rows = by_task[tid]
        ppls = [r["ppl"] for r in rows]
        w = weights(ppls, weighting, temperature)
        r = one or rng(seed, "select", method, tid)
        chosen = draw(list(range(len(rows))), ppls, k, weighting, temperature, r)
        for i in chosen:
            out.append({**rows[i], "method": method, "weight": w[i]})
    return out
