"""MBPP+ scoring inside the workflow's evaluation (gift.evaluate.score_samples_evalplus): both benchmarks,
through the real engine, against expected outputs computed from the shipped MBPP+ subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gift.config import ConfigError, check, evaluator
from gift.datasets import load_split
from gift.evalplus import compute_expected
from gift.evaluate import score_samples_evalplus, uses_evalplus

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT / "data" / "mbppplus" / "MbppPlus-v0.2.0-subset60.jsonl"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    problems = load_split("mbppplus", str(SUBSET), "test", order="shortest", limit=3)
    path = str(tmp_path_factory.mktemp("exp") / "expected.json")
    data = compute_expected(problems, path, workers=2)
    return problems, path, data


def _base_only(p: dict) -> str:
    """The reference on the base inputs, a wrong answer on every other input: passes MBPP, fails MBPP+."""
    base = json.dumps(p["base_input"])
    ep = p["entry_point"]
    return (
        p["reference"] + f"\nimport json as _j\n_B = _j.loads({base!r})\n_ref = {ep}\n"
        f"def {ep}(*a):\n    r = _ref(*a)\n"
        "    return r if [list(x) if isinstance(x, tuple) else x for x in a] in _B else 'wrong'\n"
    )


def test_shipped_subset_has_evalplus_inputs_and_expected_outputs(setup):
    problems, path, data = setup
    assert uses_evalplus(problems) and len(problems) == 3
    assert data["n_tasks"] == 3 and data["n_errors"] == 0
    for p in problems:
        t = data["tasks"][p["task_id"]]
        assert len(t["base"]) == len(p["base_input"]) and len(t["plus"]) == len(p["plus_input"])


def test_both_benchmarks_scored_per_sample_and_per_model(setup):
    problems, path, _ = setup
    a, b, c = problems
    samples = []
    # a: greedy canonical (passes both); sampled: canonical, base-only, wrong
    samples += [
        {"task_id": a["task_id"], "mode": "greedy", "sample": 0, "code": a["reference"]},
        {"task_id": a["task_id"], "mode": "sampled", "sample": 0, "code": a["reference"]},
        {"task_id": a["task_id"], "mode": "sampled", "sample": 1, "code": _base_only(a)},
        {"task_id": a["task_id"], "mode": "sampled", "sample": 2, "code": "def nothing(): pass"},
    ]
    # b: greedy passes MBPP but not MBPP+; sampled: a crash, a time-out, the canonical one
    samples += [
        {"task_id": b["task_id"], "mode": "greedy", "sample": 0, "code": _base_only(b)},
        {"task_id": b["task_id"], "mode": "sampled", "sample": 0, "code": b["reference"] + "\nraise SystemExit(0)\n"},
        {
            "task_id": b["task_id"],
            "mode": "sampled",
            "sample": 1,
            "code": f"def {b['entry_point']}(*a):\n    while True:\n        pass\n",
        },
        {"task_id": b["task_id"], "mode": "sampled", "sample": 2, "code": b["reference"]},
    ]
    # c: everything wrong
    samples += [
        {"task_id": c["task_id"], "mode": m, "sample": j, "code": "syntax error here("}
        for m, j in [("greedy", 0), ("sampled", 0), ("sampled", 1), ("sampled", 2)]
    ]
    results, per_problem, scores = score_samples_evalplus(problems, samples, path, workers=2, ks=[1, 3])
    got = [(r["passed_base"], r["passed"]) for r in results]
    assert got[:4] == [(True, True), (True, True), (True, False), (False, False)]
    assert got[4] == (True, False) and got[7] == (True, True)
    assert not got[5][0] and not got[6][0] and results[6]["status"] == "timeout"
    assert all(g == (False, False) for g in got[8:]) and results[8]["status"] == "error"
    pa, pb, pc = per_problem
    assert (pa["greedy_passed"], pa["greedy_passed_base"], pa["c"], pa["c_base"], pa["n"]) == (True, True, 1, 2, 3)
    assert (pb["greedy_passed"], pb["greedy_passed_base"], pb["c"], pb["c_base"]) == (False, True, 1, 1)
    assert scores["evaluator"] == "evalplus" and scores["headline"] == "MBPP+" and scores["n_problems"] == 3
    mbpp, plus = scores["benchmarks"]["MBPP"], scores["benchmarks"]["MBPP+"]
    assert mbpp["pass@1_greedy"] == pytest.approx(2 / 3) and plus["pass@1_greedy"] == pytest.approx(1 / 3)
    assert scores["pass@1_greedy"] == plus["pass@1_greedy"]  # the headline is MBPP+, as the paper reports
    # unbiased estimator, mean over problems: MBPP pass@1 = (2/3 + 1/3 + 0) / 3, MBPP+ (1/3 + 1/3 + 0) / 3
    assert mbpp["pass@1"] == pytest.approx(1 / 3) and plus["pass@1"] == pytest.approx(2 / 9)
    assert mbpp["pass@3"] == pytest.approx(2 / 3) and plus["pass@3"] == pytest.approx(2 / 3)


def test_expected_outputs_of_other_problems_are_refused(setup, tmp_path):
    problems, path, _ = setup
    other = load_split("mbppplus", str(SUBSET), "test", order="shortest", limit=4)
    with pytest.raises(ValueError, match="computed for other problems"):
        score_samples_evalplus(other, [], path, workers=1, ks=[1])


def test_evaluator_resolution_and_config_errors():
    cfg = {
        "data": {"dataset": "mbpp", "path": "x", "test": {"dataset": "mbppplus", "path": "data/x.jsonl"}},
        "evaluation": {},
    }
    assert evaluator(cfg) == "evalplus"
    assert evaluator({**cfg, "evaluation": {"evaluator": "tests"}}) == "tests"
    assert evaluator({"data": {"dataset": "mbpp", "path": "x", "test": {}}}) == "tests"
    assert (
        evaluator({"data": {"dataset": "mbpp", "test": {"dataset": "mbppplus", "path": "hf:evalplus/mbppplus"}}})
        == "tests"
    )
    base = {
        "experiment": "e",
        "model": {"base": "m"},
        "data": {"dataset": "mbpp", "path": "p", "seed": {"split": "train"}, "test": {"split": "test"}},
        "evaluation": {"evaluator": "evalplus"},
    }
    with pytest.raises(ConfigError, match="evaluation.evaluator: evalplus needs a test set with EvalPlus inputs"):
        check(base)
