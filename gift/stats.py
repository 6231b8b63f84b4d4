"""What is signal: confidence intervals over problems, paired comparisons of two models on the same problems.

``bootstrap_ci``      percentile bootstrap of a mean over problems (problems resampled with replacement):
                      the uncertainty of a pass@k cell that comes from which problems were drawn.
``paired_bootstrap``  the same for the difference of two models, problem by problem (the pairs resampled
                      together); the interval excludes 0 when the difference is distinguishable from noise
                      at the 5 % level; a two-sided bootstrap p-value beside it.
``mcnemar_exact``     McNemar's exact test for paired pass/fail (greedy pass@1): only the problems that one
                      model solves and the other does not count; two-sided binomial p-value.

All resampling is seeded: the same inputs give the same intervals on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

DEFAULT_B = 10000


def _rng(seed: int):
    import numpy as np

    return np.random.default_rng(int(seed))


def bootstrap_ci(
    values: Sequence[float], *, b: int = DEFAULT_B, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lower, upper): the percentile bootstrap interval of the mean of ``values`` (one per problem)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    idx = _rng(seed).integers(0, x.size, size=(b, x.size))
    means = x[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(x.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def paired_bootstrap(
    a: Sequence[float], b_: Sequence[float], *, b: int = DEFAULT_B, seed: int = 0, level: float = 0.95
) -> dict:
    """The mean difference ``a - b_`` over paired problems, its percentile bootstrap interval, and the
    two-sided bootstrap p-value (twice the smaller share of resampled differences on either side of 0)."""
    import numpy as np

    x, y = np.asarray(a, dtype=float), np.asarray(b_, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired_bootstrap: {x.size} and {y.size} values are not pairs")
    if x.size == 0:
        return {"difference": float("nan"), "lower": float("nan"), "upper": float("nan"), "p": float("nan"), "n": 0}
    d = x - y
    idx = _rng(seed).integers(0, d.size, size=(b, d.size))
    means = d[idx].mean(axis=1)
    q = (1 - level) / 2
    if np.all(d == 0):
        p = 1.0
    else:
        p = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    return {
        "difference": float(d.mean()),
        "lower": float(np.quantile(means, q)),
        "upper": float(np.quantile(means, 1 - q)),
        "p": p,
        "n": int(d.size),
    }


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """McNemar's exact test on paired pass/fail: ``only_a`` problems passed by a alone, ``only_b`` by b alone;
    p = P(X <= min) + P(X >= max) for X ~ Binomial(only_a + only_b, 1/2) (two-sided, at most 1)."""
    if len(a) != len(b):
        raise ValueError(f"mcnemar_exact: {len(a)} and {len(b)} verdicts are not pairs")
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    n = only_a + only_b
    k = min(only_a, only_b)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p": min(1.0, 2 * tail)}
