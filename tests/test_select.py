import math
import random
from collections import Counter

import pytest

from gift.metrics import pass_at_k
from gift.select import draw, select, softmax, weights


def test_softmax_weights_match_hand_computation():
    ppls = [1.0, 1.5, 3.0]
    # softmax(2.0 * ppl) by hand: exp(2), exp(3), exp(6) normalised
    e = [math.exp(2.0), math.exp(3.0), math.exp(6.0)]
    expected = [v / sum(e) for v in e]
    assert weights(ppls, "softmax", 2.0) == pytest.approx(expected)
    assert expected[2] == pytest.approx(0.9362, abs=1e-4)  # the long tail dominates
    inv = weights(ppls, "inverse", 2.0)
    assert inv[0] > inv[1] > inv[2]
    assert weights(ppls, "uniform", 2.0) == [1 / 3] * 3


def test_softmax_is_stable_for_large_perplexities():
    w = softmax([1000.0, 1001.0], 2.0)
    assert w == pytest.approx([1 / (1 + math.exp(2)), math.exp(2) / (1 + math.exp(2))])


def test_weighted_draw_frequencies_follow_softmax():
    ppls = [1.0, 1.5, 3.0]
    r = random.Random(0)
    counts = Counter()
    for _ in range(4000):
        counts.update(draw([0, 1, 2], ppls, 8, "softmax", 2.0, r))
    total = sum(counts.values())
    freq = [counts[i] / total for i in range(3)]
    assert freq == pytest.approx(weights(ppls, "softmax", 2.0), abs=0.01)


def test_uniform_draw_replacement_rules():
    r = random.Random(1)
    picks = draw(list(range(10)), [1.0] * 10, 8, "uniform", 0, r)
    assert len(picks) == 8 and len(set(picks)) == 8  # without replacement when the pool has >= k
    small = draw([0, 1, 2], [1.0] * 3, 8, "uniform", 0, r)
    assert len(small) == 8 and set(small) <= {0, 1, 2}  # with replacement below k
    assert draw([], [], 8, "uniform", 0, r) == []
    weighted = draw([0, 1], [1.0, 2.0], 5, "softmax", 2.0, r)
    assert len(weighted) == 5  # softmax draws always with replacement


def test_select_is_per_problem_and_deterministic():
    scored = [{"task_id": "a", "iteration": i, "sample": 0, "code": f"a{i}", "ppl": 1.0 + i} for i in range(3)]
    scored += [{"task_id": "b", "iteration": 0, "sample": 0, "code": "b0", "ppl": 2.0}]
    one = select(scored, k=4, weighting="softmax", temperature=2.0, seed=3, method="gift")
    two = select(scored, k=4, weighting="softmax", temperature=2.0, seed=3, method="gift")
    assert one == two
    assert Counter(r["task_id"] for r in one) == {"a": 4, "b": 4}
    assert all(r["code"] == "b0" and r["weight"] == 1.0 for r in one if r["task_id"] == "b")


@pytest.mark.parametrize(
    "n,c,k,expected",
    [(5, 0, 1, 0.0), (5, 5, 1, 1.0), (5, 2, 1, 0.4), (5, 2, 2, 1 - 3 / 10), (10, 3, 5, 1 - 21 / 252), (4, 3, 2, 1.0)],
)
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_needs_enough_samples():
    with pytest.raises(ValueError, match="pass@5"):
        pass_at_k(3, 1, 5)


def test_one_aggregation_for_both_evaluators():
    from gift.metrics import summarise

    results = [
        {"task_id": "a", "mode": "greedy", "ok": True},
        {"task_id": "a", "mode": "sampled", "ok": True},
        {"task_id": "a", "mode": "sampled", "ok": False},
        {"task_id": "b", "mode": "greedy", "ok": False},
        {"task_id": "b", "mode": "sampled", "ok": False},
        {"task_id": "b", "mode": "sampled", "ok": False},
    ]
    per, scores = summarise(results, [1, 2, 3], order=["a", "b"], key="ok")
    assert [(r["task_id"], r["n"], r["c"], r["greedy"]) for r in per] == [("a", 2, 1, True), ("b", 2, 0, False)]
    assert scores == {
        "pass@1": pytest.approx(0.25),
        "pass@2": pytest.approx(0.5),
        "pass@1_greedy": 0.5,
    }  # no pass@3: n = 2
    # without modes every result is a sample; a verdict that does not apply (None) reports nothing
    per, scores = summarise([{"task_id": "a", "ok": True}, {"task_id": "a", "ok": None}], [1], key="ok")
    assert per[0]["c"] is None and scores == {}
    # a problem without any sample leaves pass@k and greedy unreported
    _, scores = summarise(results, [1], order=["a", "b", "c"], key="ok")
    assert scores == {}
