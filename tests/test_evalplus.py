"""MBPP+ / EvalPlus-style evaluation (gift.evalplus) through the real sandbox engine.

Uses six real MBPP+ v0.2.0 rows (tests/fixtures/evalplus/MbppPlus-6.jsonl). The comparisons with the
reference evaluator (evalplus 0.3.1, installed by install.sh) run its own oracle code and its own
`evalplus.evaluate` command."""

from __future__ import annotations

import json
import os

import pytest

from gift.evalplus import compute_expected, deserialize_inputs, evaluate, load_expected
from gift.execute import decode_value, encode_value, execute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MBPPPLUS = os.path.join(ROOT, "tests", "fixtures", "evalplus", "MbppPlus-6.jsonl")

IDS = ["Mbpp/2", "Mbpp/124", "Mbpp/82", "Mbpp/252", "Mbpp/722", "Mbpp/580"]


@pytest.fixture(scope="module")
def problems():
    from gift.datasets import load_split

    return load_split("mbppplus", MBPPPLUS, "test", ids=IDS)


@pytest.fixture(scope="module")
def expected(problems, tmp_path_factory):
    return compute_expected(problems, str(tmp_path_factory.mktemp("exp") / "expected.json"))


def _by_id(problems):
    return {p["task_id"]: p for p in problems}


def _fix(problems, tid):
    p = _by_id(problems).get(tid)
    if p is None:
        pytest.skip(f"{tid} not in the data used here")
    return p


# --------------------------------------------------------------------- value codec
def test_value_codec_is_lossless():
    import collections

    vals = [
        (1, [2, (3,)]),
        {1, 2},
        frozenset({"a"}),
        {(1, 2): [None, True]},
        complex(1, -2),
        float("nan"),
        float("-inf"),
        -0.0,
        10**5000,
        b"\x00a",
        "a b\n\u00e9",
        collections.Counter("aab"),
        [True, 1, 1.0],
    ]
    for v in vals:
        d = decode_value(encode_value(v))
        assert type(d) is type(v) or isinstance(v, float)
        if v == v:
            assert d == v and (type(v) is int or repr(d) == repr(v))
    assert " " not in encode_value(["a b", {"c d": 1}])


def test_input_conversions():
    assert deserialize_inputs("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert deserialize_inputs("Mbpp/124", [[0, "1j"]]) == [(0.0, 1j)]
    assert deserialize_inputs("Mbpp/115", [[[[], [1]]]]) == [[[{}, {1}]]]
    assert deserialize_inputs("Mbpp/722", [[{"a": [1, 2]}, 3]]) == [[{"a": (1, 2)}, 3]]
    assert deserialize_inputs("Mbpp/580", [[[1, [2, 3]]]]) == [(((1, (2, 3)),))]
    assert deserialize_inputs("HumanEval/0", [[[1.0], 0.5]]) == [[[1.0], 0.5]]


# --------------------------------------------------------------------- engine format
def _row(code, tests, **kw):
    return {"id": kw.pop("id", "r"), "format": "evalplus", "entry_point": "f", "code": code, "tests": tests, **kw}


def _t(inp, exp, atol=0.0, lim=None, group=0):
    d = {
        "input": json.loads(encode_value(list(inp))),
        "expected": json.loads(encode_value(exp)),
        "atol": atol,
        "group": group,
    }
    if lim:
        d["time_limit"] = lim
    return json.dumps(d)


def test_engine_format_verdicts():
    rows = [
        _row("def f(a, b): return tuple(sorted(set(a) & set(b)))", [_t([(1, 2), (2, 3)], (2,))], id="ok"),
        _row("def f(a, b): return sorted(set(a) & set(b))", [_t([(1, 2), (2, 3)], (2,))], id="list-for-tuple"),
        _row("def f(x): return x + 1", [_t([1], 2), _t([2], 4), _t([3], 4)], id="wrong"),
        _row("def f(x):\n    while True: pass", [_t([1], 2, lim=0.3), _t([2], 3, lim=0.3)], id="timeout"),
        _row("def f(x): raise ValueError('boom')", [_t([1], 2)], id="crash"),
        _row("def f(x): return 1 / 3 + 1e-7", [_t([1], 1 / 3)], id="float-tol"),  # atol 0 -> 1e-6 for floats
        _row("def f(x): return 1 / 3 + 1e-3", [_t([1], 1 / 3, atol=1e-2)], id="atol"),
        _row("def f(x): return 1 / 3 + 1e-3", [_t([1], 1 / 3)], id="atol-exceeded"),
        _row("def f(x): return 2", [_t([1], 2.0)], id="int-eq-float"),
        _row("class A:\n    def __eq__(s, o): return True\ndef f(x): return A()", [_t([1], 2)], id="eq-hack"),
        _row(
            "class I(int):\n    def __eq__(s, o): return True\ndef f(x): return I(5)", [_t([1], 2)], id="int-subclass"
        ),
        _row("import sys\ndef f(x): sys.exit(0)", [_t([1], 2)], id="exit"),
        _row("def g(x): return x", [_t([1], 1)], id="no-entry-point"),
        _row("def f(x): return x", [_t([1], 1), _t([2], 3, group=1)], id="groups"),
    ]
    res = {r["id"]: r for r in execute(rows, workers=2)}
    assert res["ok"]["passed"] and res["ok"]["status"] == "passed"
    assert not res["list-for-tuple"]["passed"] and "wrong output" in res["list-for-tuple"]["detail"]
    w = res["wrong"]
    assert w["status"] == "failed" and w["tests_passed"] == 1 and w["detail"].startswith("test 1:")
    assert res["timeout"]["status"] == "timeout" and "time limit" in res["timeout"]["detail"]
    assert res["crash"]["status"] == "failed" and "ValueError: boom" in res["crash"]["detail"]
    assert res["float-tol"]["passed"] and res["atol"]["passed"]
    assert not res["atol-exceeded"]["passed"]
    assert res["int-eq-float"]["passed"]
    assert not res["eq-hack"]["passed"] and not res["int-subclass"]["passed"]
    assert not res["exit"]["passed"] and not res["no-entry-point"]["passed"]
    g = res["groups"]["groups"]
    assert g[0]["passed"] and not g[1]["passed"] and not res["groups"]["passed"]


def test_special_oracles():
    rows = [
        _row(
            "import re\ndef f(t): return re.search('ab', t)",
            [_t(["xab"], True), _t(["x"], False)],
            dataset="mbpp",
            id="not-none",
        ),
        _row("def f(a, b): return [3, 1]", [_t([[1, 3], [3, 1]], [1, 3])], dataset="mbpp", id="set-eq"),
    ]
    rows[0]["entry_point"] = "text_match_three"
    rows[1]["entry_point"] = "similar_elements"
    rows[0]["code"] = rows[0]["code"].replace("def f", "def text_match_three")
    rows[1]["code"] = rows[1]["code"].replace("def f", "def similar_elements")
    res = execute(rows, workers=2)
    assert res[0]["passed"], res[0]
    assert res[1]["passed"], res[1]


# --------------------------------------------------------------------- expected outputs + evaluate
def test_expected_outputs_cached(problems, tmp_path):
    small = [p for p in problems if p["task_id"] in ("Mbpp/2", "Mbpp/124", "Mbpp/722")]
    path = str(tmp_path / "exp.json")
    a = compute_expected(small, path)
    assert a["cache"] == "miss" and a["n_tasks"] == len(small) and a["n_errors"] == 0
    assert os.path.exists(path) and not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
    b = compute_expected(small, path)
    assert b["cache"] == "hit" and b["tasks"] == a["tasks"]
    load_expected(path, small)
    with pytest.raises(ValueError):
        load_expected(path, small[:1])
    t = a["tasks"]["Mbpp/2"]
    assert decode_value(t["base"][0]) == (4, 5) and isinstance(decode_value(t["base"][0]), tuple)
    assert isinstance(decode_value(a["tasks"]["Mbpp/124"]["base"][0]), float)


def test_evaluate_hand_checked(problems, expected):
    p2 = _fix(problems, "Mbpp/2")
    p124 = _fix(problems, "Mbpp/124")
    p82 = _fix(problems, "Mbpp/82")
    samples = [
        {"task_id": "Mbpp/2", "solution": p2["reference"]},
        # a list instead of a tuple: wrong for EvalPlus (exact ==), although set-equality applies to Mbpp/2
        {"task_id": "Mbpp/2", "solution": "def similar_elements(a, b):\n  return sorted(set(a) & set(b))\n"},
        {"task_id": "Mbpp/2", "solution": "def similar_elements(a, b):\n  return None\n"},
        # complex inputs must arrive as complex numbers
        {
            "task_id": "Mbpp/124",
            "solution": "import cmath\ndef angle_complex(a, b):\n"
            "  assert isinstance(b, complex)\n  return cmath.phase(a + b)\n",
        },
        # within atol (1e-4 for Mbpp/82 in v0.2.0) and outside it
        {
            "task_id": "Mbpp/82",
            "solution": "import math\ndef volume_sphere(r):\n  return 4 / 3 * 3.14159265 * r ** 3\n",
        },
        {"task_id": "Mbpp/82", "solution": "def volume_sphere(r):\n  return 4 / 3 * 3.14 * r ** 3\n"},
    ]
    res = evaluate(problems, samples, expected)
    v = [(r["base"], r["plus"]) for r in res["samples"]]
    assert v[0] == (True, True)
    # set-equality oracle: EvalPlus compares set(out) == set(exp) for similar_elements
    assert v[1] == (True, True)
    assert v[2] == (False, False)
    assert v[3] == (True, True)
    assert v[4][0] is True
    assert v[5] == (False, False)
    per = {r["task_id"]: r for r in res["per_task"]}
    assert per["Mbpp/2"]["n"] == 3 and per["Mbpp/2"]["c_base"] == 2
    assert 0 < res["scores"]["base"]["pass@1"] <= 1 and "pass@1" in res["scores"]["plus"]
    _ = (p2, p124, p82)


def test_evaluate_time_limit_from_reference(tmp_path):
    """Per-input limit = max(1 s, 4 x the reference's CPU time): a correct but much slower
    candidate times out on the heavy input (base still passes), a fast one passes."""
    p = {
        "task_id": "Mbpp/9001",
        "entry_point": "f",
        "reference": "def f(n):\n    return sum(range(n))\n",
        "base_input": [[10]],
        "plus_input": [[3]],
        "atol": 0,
    }
    p["plus_input"] = [[3_000_000]]
    exp = compute_expected([p], str(tmp_path / "e.json"))
    assert 0 < exp["tasks"]["Mbpp/9001"]["plus_time"][0] < 0.25
    slow = (
        "def f(n):\n    s = 0\n    for i in range(n):\n        for _ in range(80): pass\n        s += i\n    return s\n"
    )
    res = evaluate(
        [p],
        [
            {"task_id": "Mbpp/9001", "solution": "def f(n):\n    return n * (n - 1) // 2\n"},
            {"task_id": "Mbpp/9001", "solution": slow},
        ],
        exp,
    )
    fast, slow_r = res["samples"]
    assert fast["base"] and fast["plus"]
    assert slow_r["base"] and not slow_r["plus"] and slow_r["status"] == "timeout", slow_r


def test_humaneval_base_only(tmp_path):
    from gift.datasets import load_split

    path = os.path.join(ROOT, "tests", "fixtures", "datasets", "humaneval", "HumanEval.jsonl.gz")
    ps = load_split("humaneval", path, "test", ids=["HumanEval/0", "HumanEval/2"])
    samples = [{"task_id": p["task_id"], "solution": p["reference"]} for p in ps]
    samples.append(
        {"task_id": "HumanEval/0", "solution": "def has_close_elements(numbers, threshold):\n    return True\n"}
    )
    res = evaluate(ps, samples, None)
    assert [r["base"] for r in res["samples"]] == [True, True, False]
    assert all(r["plus"] is None for r in res["samples"]) and res["scores"]["plus"] is None
    assert res["notes"] and "HumanEval+" in res["notes"][0]


def test_agrees_with_evalplus_oracle(problems, expected):
    """Our parent-side comparison against evalplus 0.3.1's own oracle code on decoded values."""
    ev = pytest.importorskip("evalplus.eval", reason="evalplus not installed (pip install evalplus==0.3.1)")
    import numpy as np

    from gift.sandbox.child import oracle as m

    cases = [
        ((1, 2), [1, 2], 0),
        ([1.0, 2.0], [1.0, 2.0000001], 0),
        (0.5, 0.5001, 1e-3),
        ("a", "a", 0),
        (2, 2.0, 0),
        (None, None, 0),
        ([1, [2]], [1, [2]], 0),
        (np.float64(1.0000001), 1.0, 0),
        ({1: 2}, {1: 2.0}, 0),
    ]
    for out, exp, atol in cases:
        ours, _ = m.plus_compare(out, exp, atol, "f", "mbpp", (), np)
        theirs = True
        a = atol
        try:
            exact = out == exp
            if a == 0 and ev.is_floats(exp):
                a = 1e-6
            if not exact and a != 0:
                assert type(out) is type(exp)
                if isinstance(exp, (list, tuple)):
                    assert len(out) == len(exp)
                assert np.allclose(out, exp, rtol=1e-07, atol=a)
            else:
                assert exact
        except BaseException:
            theirs = False
        assert ours == theirs, (out, exp, atol)


@pytest.mark.slow
def test_verdicts_agree_with_the_evalplus_command(problems, tmp_path):
    """benchmarks/evalplus_agreement.py on the six real tasks: `python -m evalplus.evaluate` (evalplus 0.3.1,
    offline on the same file) and gift.evalplus give the same MBPP and MBPP+ verdict to every sample of the
    canonical solutions and of five kinds of broken ones."""
    pytest.importorskip("evalplus.evaluate", reason="evalplus not installed (./install.sh installs evalplus==0.3.1)")
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "evalplus_agreement", os.path.join(ROOT, "benchmarks", "evalplus_agreement.py")
    )
    agree = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agree)
    cats = ("canonical", "off_by_one", "wrong_type", "returns_none", "raises", "float_noise")
    samples = agree.build_corpus(problems, cats, model_samples=str(tmp_path / "none.jsonl"))
    ours, _, _ = agree.run_gift(problems, samples, str(tmp_path), workers=2)
    theirs, _ = agree.run_evalplus(samples, MBPPPLUS, str(tmp_path), sys.executable, parallel=2)
    per_task: dict = {}
    verdicts = []
    for s in samples:
        k = per_task.get(s["task_id"], 0)
        per_task[s["task_id"]] = k + 1
        g, e = ours[(s["task_id"], k)], theirs[(s["task_id"], k)]
        verdicts.append((s["category"], s["task_id"], (g["base"], bool(g["plus"])), (e[0], e[1])))
    assert len(verdicts) == 6 * len(cats)
    assert [v for v in verdicts if v[2] != v[3]] == []
    assert all(v[2] == (True, True) for v in verdicts if v[0] == "canonical")
    assert all(v[2] == (False, False) for v in verdicts if v[0] in ("returns_none", "raises"))
