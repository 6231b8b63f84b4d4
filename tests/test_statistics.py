"""Intervals, paired tests and replicate seeds (gift.stats, gift.tables): checked against hand-computed cases."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from gift.stats import bootstrap_ci, mcnemar_exact, paired_bootstrap
from gift.tables import MARKERS, main_table, paired_table, replicates_paired_table, replicates_table, write_table

ROOT = Path(__file__).resolve().parent.parent


def test_mcnemar_exact_on_a_known_table():
    # 20 problems: 7 solved by a alone, 1 by b alone, 12 concordant. Binomial(8, 1/2):
    # P(X <= 1) = (1 + 8) / 256, two-sided p = 18 / 256
    a = [True] * 7 + [False] * 1 + [True] * 6 + [False] * 6
    b = [False] * 7 + [True] * 1 + [True] * 6 + [False] * 6
    r = mcnemar_exact(a, b)
    assert (r["only_a"], r["only_b"]) == (7, 1) and r["p"] == pytest.approx(18 / 256)
    assert mcnemar_exact([True] * 8 + [False] * 12, [False] * 20)["p"] == pytest.approx(2 / 256)
    assert mcnemar_exact(a, a)["p"] == 1.0  # no discordant pair
    assert mcnemar_exact([True, False], [False, True])["p"] == 1.0  # one each way: min(1, 2 * 3/4)


def test_bootstrap_interval_of_a_mean():
    assert bootstrap_ci([1.0] * 20, seed=1) == (1.0, 1.0, 1.0)  # no spread, no uncertainty
    mean, lo, hi = bootstrap_ci([0.0, 1.0] * 10, b=20000, seed=3)
    # the mean of 20 fair coin flips resampled: sd sqrt(0.25 / 20) = 0.112, so about 0.5 -+ 1.96 * 0.112
    assert (
        mean == 0.5
        and lo == pytest.approx(0.5 - 1.96 * math.sqrt(0.25 / 20), abs=0.03)
        and hi == pytest.approx(1 - lo, abs=0.03)
    )
    assert bootstrap_ci([0.0, 1.0] * 10, seed=3) == bootstrap_ci([0.0, 1.0] * 10, seed=3)  # seeded


def test_paired_bootstrap_sees_what_unpaired_intervals_hide():
    # a solves exactly the problems b solves plus 5 more: a large paired effect with overlapping marginals
    b = [1.0] * 8 + [0.0] * 12
    a = [1.0] * 13 + [0.0] * 7
    r = paired_bootstrap(a, b, seed=0)
    assert r["difference"] == pytest.approx(0.25) and r["lower"] > 0 and r["p"] < 0.05
    assert paired_bootstrap(b, b, seed=0) == {"difference": 0.0, "lower": 0.0, "upper": 0.0, "p": 1.0, "n": 20}
    with pytest.raises(ValueError, match="not pairs"):
        paired_bootstrap([1.0], [1.0, 0.0])


def _write_model(d: Path, model: str, greedy: list[bool], c: list[int], n: int = 2):
    d.mkdir(parents=True, exist_ok=True)
    per = [
        {"task_id": f"t{i}", "greedy_passed": g, "n": n, "c": ci, "pass@1": ci / n}
        for i, (g, ci) in enumerate(zip(greedy, c, strict=True))
    ]
    (d / "per_problem.jsonl").write_text("".join(json.dumps(r) + "\n" for r in per))
    scores = {
        "model": model,
        "n_problems": len(per),
        "pass@1_greedy": sum(greedy) / len(per),
        "pass@1": sum(r["pass@1"] for r in per) / len(per),
        "evaluator": "tests",
    }
    (d / "scores.json").write_text(json.dumps(scores))
    return str(d / "scores.json"), str(d / "per_problem.jsonl")


def test_main_table_has_intervals_and_marks_what_is_distinguishable(tmp_path):
    files = [
        _write_model(tmp_path / "base", "base", [False] * 20, [0] * 20),
        _write_model(tmp_path / "rft", "rft", [True] * 2 + [False] * 18, [1] * 2 + [0] * 18),
        _write_model(tmp_path / "gift", "gift", [True] * 12 + [False] * 8, [2] * 12 + [0] * 8),
    ]
    scores, per = [f[0] for f in files], [f[1] for f in files]
    df = main_table(scores, per, seed=1)
    assert {"pass@1 (greedy) lower", "pass@1 (greedy) upper", "pass@1 (sampled) lower"} <= set(df.columns)
    g = df.set_index("method").loc["GiFT"]
    assert g["pass@1 (greedy)"] == 60 and g["pass@1 (greedy) lower"] < 60 < g["pass@1 (greedy) upper"]
    # GiFT solves 12 problems the base model never solves and 10 more than RFT: both differences are real
    assert g["pass@1 (greedy) marker"] == MARKERS["base"] + MARKERS["rft"]
    assert df.set_index("method").loc["RFT", "pass@1 (greedy) marker"] == ""  # 2 of 20 against 0 of 20: noise
    write_table(df, tmp_path / "m.csv", tmp_path / "m.md", tmp_path / "m.tex", "caption")
    md = (tmp_path / "m.md").read_text()
    assert "60.0 [" in md and "]†‡" in md and "lower" not in md
    assert r"$^\dagger$" in (tmp_path / "m.tex").read_text()
    paired = paired_table(scores, per, seed=1)
    row = paired[
        (paired["method"] == "GiFT") & (paired["versus"] == "Base model") & (paired["metric"] == "pass@1 (greedy)")
    ].iloc[0]
    assert (
        row["difference"] == 60
        and row["solved by method only"] == 12
        and row["McNemar exact p"] == pytest.approx(2 / 4096)
    )


def test_replicate_tables_average_seeds_and_pool_pairs(tmp_path):
    files = []
    for seed, solved in (("seed1", 10), ("seed2", 14)):
        files.append(_write_model(tmp_path / seed / "eval/base", "base", [False] * 20, [0] * 20))
        files.append(
            _write_model(tmp_path / seed / "eval/gift", "gift", [True] * solved + [False] * (20 - solved), [1] * 20)
        )
    scores, per = [f[0] for f in files], [f[1] for f in files]
    df = replicates_table(scores, per).set_index("method")
    assert df.loc["GiFT", "seeds"] == 2 and df.loc["GiFT", "pass@1 (greedy)"] == 60.0
    assert df.loc["GiFT", "pass@1 (greedy) sd"] == pytest.approx(math.sqrt(2 * 10**2))  # 50 and 70
    pooled = replicates_paired_table(scores, per, seed=0)
    row = pooled[(pooled["method"] == "GiFT") & (pooled["metric"] == "pass@1 (greedy)")].iloc[0]
    assert row["problems"] == 40 and row["seeds"] == 2 and row["solved by method only"] == 24


@pytest.mark.slow
def test_two_replicates_dry_run_with_the_per_seed_jobs(tmp_path):
    extra = tmp_path / "rep.yaml"
    extra.write_text("replicates: [7, 8]\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "2",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(ROOT / "tests/configs/tiny.yaml"),
            str(extra),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for seed in (7, 8):
        assert (
            f"results/tiny/seed{seed}/gibbs/iter1/codes.jsonl" in out
            and f"results/tiny/seed{seed}/tables/main.csv" in out
        )
    assert "results/tiny/tables/replicates.csv" in out and "results/tiny/data/seed.jsonl" in out
    assert "results/tiny/seed7/data" not in out and "results/tiny/seed7/model" not in out  # data and model are shared
    counts = {
        ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines() if len(ln.split()) == 2 and ln.split()[1].isdigit()
    }
    assert counts["finetune"] == 2 * 5 and counts["prepare_model"] == 1 and counts["replicates_table"] == 1
