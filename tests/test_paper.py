"""The paper's main table in one place (rules/paper.smk): the eight paper experiments are one DAG whose shared
fetches are planned once; a CPU rehearsal (two "models" x MBPP+ / CodeInsight subsets) assembles a table whose
cells are the experiments' own cells; a missing experiment is a gap with its name, a stale one is flagged."""

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from data_standin import stand_in_data

from gift.paper import column_name, parse_name

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "rules" / "paper.smk"
REHEARSAL = ROOT / "tests" / "configs" / "rehearsal"


def snakemake(workdir, *args, timeout=1200):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(PAPER), "--directory", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def job_counts(out: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}


def test_an_experiment_config_names_its_column():
    assert parse_name("config/paper/deepseek-coder-6.7b--mbpp.yaml") == ("deepseek-coder-6.7b", "mbpp")
    with pytest.raises(ValueError, match="tiny.yaml: an experiment's config file is named <model>--<dataset>"):
        parse_name("tests/configs/tiny.yaml")
    assert column_name("m", "mbpp", "MBPP+ pass@1 (greedy)") == "m / mbpp (MBPP+)"


@pytest.mark.slow
def test_dry_run_plans_all_eight_experiments_with_shared_fetches_once(tmp_path):
    """The paper configs through the `paper` target: every experiment's DAG, and each hub model or dataset
    that several experiments use fetched by one job (2 models, MBPP from the hub, the MBPP+ release)."""
    examples = tmp_path / "examples.yaml"  # the authors' example files are not here: a file in their format
    examples.write_text(f"gibbs: {{description: {{examples: {ROOT / 'tests/fixtures/ict/ict_data.json'}}}}}\n")
    for config in sorted((ROOT / "config/paper").glob("*.yaml")):
        stand_in_data(config, tmp_path)  # the full releases: the dry run only checks that the paths exist
    proc = snakemake(
        tmp_path, "-n", "--cores", "8", "--configfile", str(ROOT / "config/paper.yaml"),
        "--config", f"extra_configfiles=[{examples}]", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    stems = [Path(p).stem.replace("-", "_").replace(".", "_") for p in sorted((ROOT / "config/paper").glob("*.yaml"))]
    assert len(stems) == 8
    for s in stems:  # each experiment whole, as its own dry run plans it (tests/test_paper_configs.py)
        assert counts[f"{s}_sample_codes"] == 60 and counts[f"{s}_finetune"] == 4, s
        assert counts[f"{s}_evaluate_generate"] == 9 and counts[f"{s}_table"] == 1, s
    fetch = {k: v for k, v in counts.items() if k.endswith("_fetch")}
    assert sum(fetch.values()) == 4, fetch
    fetched = re.findall(r"^\s+output: (cache/fetched/\S+)$", out, re.M)
    assert len(fetched) == len(set(fetched)) == 4, fetched
    assert any("deepseek-coder-6.7b-base" in f for f in fetched) and any("CodeLlama-7b-Python" in f for f in fetched)
    assert counts["paper_tables"] == 1 and counts["paper"] == 1


def link_models(workdir: Path, base_model_dir: Path, bos_model_dir: Path) -> None:
    (workdir / "models").mkdir(parents=True)
    (workdir / "models" / "smollm2").symlink_to(base_model_dir)
    (workdir / "models" / "smollm2-bos").symlink_to(bos_model_dir)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, base_model_dir, bos_model_dir):
    """The rehearsal set run through the paper workflow's table target (every experiment's main table)."""
    work = tmp_path_factory.mktemp("paper")
    link_models(work, base_model_dir, bos_model_dir)
    proc = snakemake(work, "--cores", "2", "--configfile", str(REHEARSAL / "paper.yaml"), "--", "paper_tables")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def experiments():
    cfg = yaml.safe_load((REHEARSAL / "paper.yaml").read_text())
    out = []
    for p in cfg["experiments"]:
        model, dataset = parse_name(p)
        out.append((model, dataset, yaml.safe_load((ROOT / p).read_text())["experiment"]))
    return out


@pytest.mark.slow
def test_rehearsal_cells_equal_each_experiments_own_tables(rehearsal):
    table = pd.read_csv(rehearsal / "results/paper/tables/main.csv")
    assert list(table["method"]) == ["Base model", "RFT", "RFT+RD", "GiFT"]  # the paper's order
    checked = 0
    for model, dataset, name in experiments():
        own = pd.read_csv(rehearsal / f"results/{name}/tables/main.csv", keep_default_na=False, na_values=[""])
        paired = pd.read_csv(rehearsal / f"results/{name}/tables/comparison_paired.csv")
        metrics = [c for c in own.columns if c.endswith("pass@1 (greedy)")]
        assert len(metrics) == (2 if dataset == "mbpp" else 1)  # MBPP+ and MBPP, EvalPlus's way
        for metric in metrics:
            col = column_name(model, dataset, metric)
            for r in own.to_dict("records"):
                row = table[table["method"] == r["method"]].iloc[0]
                for suffix in ("", " lower", " upper"):
                    assert math.isclose(row[col + suffix], r[metric + suffix], rel_tol=1e-3, abs_tol=1e-9)
                mark = [m if isinstance(m, str) else "" for m in (row[col + " marker"], r[f"{metric} marker"])]
                assert mark[0] == mark[1]
                vs = paired[
                    (paired["method"] == r["method"]) & (paired["versus"] == "RFT") & (paired["metric"] == metric)
                ]
                if len(vs):
                    assert math.isclose(row[col + " vs RFT"], vs["difference"].iloc[0], abs_tol=1e-3)
                else:  # the base model and RFT itself have no difference to RFT
                    assert math.isnan(row[col + " vs RFT"])
                checked += 1
    assert checked == 4 * 3  # four methods x (smollm2's 2 MBPP columns + smollm2-bos's CodeInsight column)
    md = (rehearsal / "results/paper/tables/main.md").read_text()
    assert "smollm2-bos / codeinsight" in md and "vs RFT" in md and "missing" not in md
    assert r"\begin{tabular}" in (rehearsal / "results/paper/tables/main.tex").read_text()
    # the claim figure and its data: GiFT's gain over RFT is the experiment's own paired difference
    claim = pd.read_csv(rehearsal / "results/paper/tables/claim.csv")
    assert len(claim) == 2
    for r in claim.to_dict("records"):
        paired = pd.read_csv(rehearsal / f"results/{r['experiment']}/tables/comparison_paired.csv")
        vs = paired[(paired["method"] == "GiFT") & (paired["versus"] == "RFT") & (paired["metric"] == r["metric"])]
        assert math.isclose(r["GiFT - RFT"], vs["difference"].iloc[0], abs_tol=1e-3)
        assert not math.isnan(r["GiFT - RFT+RD"]) and r["GiFT - RFT+RD lower"] <= r["GiFT - RFT+RD upper"]
    for f in ("claim.png", "claim.pdf"):
        assert (rehearsal / "results/paper/figures" / f).stat().st_size > 1000
    comparison = pd.read_csv(rehearsal / "results/paper/tables/comparison.csv")
    assert set(comparison["status"]) == {"not in the paper"} and len(comparison) == 2 * 4


@pytest.mark.slow
def test_a_missing_experiment_is_a_gap_and_a_changed_config_is_flagged(rehearsal, tmp_path):
    """assemble_only: nothing runs; an experiment without results is a gap naming it, an experiment whose
    config changed since its tables were made is flagged stale (Snakemake's dry run says what would rerun)."""
    never = tmp_path / "never--mbpp.yaml"
    never.write_text((REHEARSAL / "smollm2--mbpp.yaml").read_text().replace("rehearsal-smollm2-mbpp", "never-run"))
    changed = tmp_path / "smollm2-bos--codeinsight.yaml"
    changed.write_text((REHEARSAL / "smollm2-bos--codeinsight.yaml").read_text() + "ppl: {expand_tabs: true}\n")
    cfg = yaml.safe_load((REHEARSAL / "paper.yaml").read_text())
    cfg["experiments"] = [
        str(changed) if p.endswith("smollm2-bos--codeinsight.yaml") else p for p in cfg["experiments"]
    ]
    cfg["experiments"].append(str(never))
    cfg.update(assemble_only=True, output="results/paper-partial")
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(cfg))
    work = rehearsal
    proc = snakemake(work, "--cores", "1", "--configfile", str(tmp_path / "paper.yaml"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "_finetune" not in proc.stdout + proc.stderr  # no experiment's rule is even loaded
    out = work / "results/paper-partial/tables"
    md = (out / "main.md").read_text()
    assert "— (missing: never-run)" in md
    assert "smollm2-bos / codeinsight [STALE]" in md and "smollm2 / mbpp (MBPP+) [STALE]" not in md
    status = pd.read_csv(out / "experiments.csv").set_index("name")
    assert status.loc["never-run", "status"] == "missing"
    assert status.loc["rehearsal-smollm2-bos-codeinsight", "status"] == "stale"
    assert "score_ppl" in status.loc["rehearsal-smollm2-bos-codeinsight", "reason"]
    assert set(status["status"]) == {"ok", "stale", "missing"}
    table = pd.read_csv(out / "main.csv")
    assert table["never / mbpp"].isna().all()
    full = pd.read_csv(work / "results/paper/tables/main.csv")
    assert table["smollm2 / mbpp (MBPP+)"].tolist() == full["smollm2 / mbpp (MBPP+)"].tolist()
    shutil.rmtree(work / "results/paper-partial")


def write_experiment(root: Path, name: str, outcomes: dict[str, list[int]], evalplus: bool) -> dict:
    """An experiment's eval/ files from given greedy outcomes per method (1: solved), and its own tables made
    by the workflow's table code (gift.tables), as rule `table` makes them."""
    from gift.io import write_json, write_jsonl
    from gift.tables import main_table, paired_table, write_table

    d = root / "results" / name
    scores, per_problem = [], []
    for m, solved in outcomes.items():
        rows = [
            {"task_id": f"t/{i}", "greedy_passed": bool(s), "n": 0, "c": 0}
            | ({"greedy_passed_base": bool(s or i == 0), "c_base": 0} if evalplus else {})
            for i, s in enumerate(solved)
        ]
        mean = sum(solved) / len(solved)
        sc = {"model": m, "n_problems": len(solved), "pass@1_greedy": mean}
        if evalplus:
            base = sum(bool(s or i == 0) for i, s in enumerate(solved)) / len(solved)
            sc |= {
                "headline": "MBPP+",
                "benchmarks": {"MBPP": {"pass@1_greedy": base}, "MBPP+": {"pass@1_greedy": mean}},
            }
        write_json(d / "eval" / m / "scores.json", sc)
        write_jsonl(d / "eval" / m / "per_problem.jsonl", rows)
        scores.append(str(d / "eval" / m / "scores.json"))
        per_problem.append(str(d / "eval" / m / "per_problem.jsonl"))
    t = d / "tables"
    t.mkdir(parents=True)
    write_table(main_table(scores, per_problem, b=200, seed=1), t / "main.csv", t / "main.md", None, "main")
    paired = paired_table(scores, per_problem, b=200, seed=1)
    write_table(paired, str(t / "comparison_paired.csv"), str(t / "comparison_paired.md"), None, "paired")
    return {"dir": str(d), "b": 200, "seed": 1}


def test_assembly_reads_each_experiments_own_cells_and_shows_gaps(tmp_path):
    """gift.paper on two experiments' real tables (made by gift.tables from given outcomes) and a missing one."""
    from gift.paper import cells, claim_points, figure_claim, gain_over_rd, published_rows, write_main
    from gift.published import load_published

    solved = {
        "base": [0, 0, 0, 0, 1, 0, 0, 0],
        "rft": [1, 0, 0, 0, 1, 0, 0, 0],
        "rft_rd": [1, 1, 0, 0, 1, 0, 0, 0],
        "gift": [1, 1, 1, 1, 1, 1, 0, 0],
    }
    entries = [
        dict(write_experiment(tmp_path, "a-mbpp", solved, True), name="a-mbpp", model="a", dataset="mbpp"),
        dict(write_experiment(tmp_path, "a-ci", solved, False), name="a-ci", model="a", dataset="codeinsight"),
        dict(dir=str(tmp_path / "results/b-ci"), name="b-ci", model="b", dataset="codeinsight", b=200, seed=1),
    ]
    for e in entries:
        e.update(status="missing" if e["name"] == "b-ci" else "ok", reason="")
    long = cells(entries)
    out = tmp_path / "paper"
    out.mkdir()
    cols = write_main(long, entries, str(out / "main.csv"), str(out / "main.md"), str(out / "main.tex"), "cap")
    assert cols == ["a / mbpp (MBPP+)", "a / mbpp (MBPP)", "a / codeinsight", "b / codeinsight"]
    table = pd.read_csv(out / "main.csv")
    assert list(table["method"]) == ["Base model", "RFT", "RFT+RD", "GiFT"]
    own = pd.read_csv(tmp_path / "results/a-mbpp/tables/main.csv")
    for suffix in ("", " lower", " upper"):
        assert table["a / mbpp (MBPP)" + suffix].tolist() == pytest.approx(
            own["MBPP pass@1 (greedy)" + suffix].tolist()
        )
    assert table["a / codeinsight"].tolist() == pytest.approx([12.5, 25, 37.5, 75])
    assert table["b / codeinsight"].isna().all()
    assert table["a / codeinsight vs RFT"].tolist()[2:] == pytest.approx([12.5, 50])
    md = (out / "main.md").read_text()
    assert md.count("— (missing: b-ci)") == 4 and "75.0 [37.5, 100.0]†‡ (+50.0 vs RFT)" in md and "nan" not in md
    rd = {e["name"]: gain_over_rd(e, "pass@1 (greedy)" if e["dataset"] != "mbpp" else "MBPP+ pass@1 (greedy)")
          for e in entries[:2]}  # fmt: skip
    points = claim_points(long, rd)
    assert points["GiFT - RFT"].tolist() == pytest.approx([50, 50]) and points[
        "GiFT - RFT+RD"
    ].tolist() == pytest.approx([37.5, 37.5])
    figure_claim(points, str(out / "claim.png"))
    assert (out / "claim.pdf").stat().st_size > 1000
    comparison = published_rows(long, load_published())
    assert len(comparison) == 8 and set(comparison["run"]) == {"a-mbpp", "a-ci"}


@pytest.mark.slow
def test_paper_workflow_passes_snakemake_lint(tmp_path):
    proc = snakemake(
        tmp_path, "--lint", "--configfile", str(ROOT / "config/paper.yaml"), "--config", "assemble_only=true"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out, out[-3000:]


def test_with_every_experiment_missing_the_table_is_all_gaps(tmp_path):
    from gift.paper import cells, claim_points, figure_claim, published_rows, write_main
    from gift.published import load_published

    entries = [dict(name="x", model="m", dataset="d", dir=str(tmp_path / "no"), status="missing", reason="")]
    long = cells(entries)
    write_main(long, entries, *(str(tmp_path / f"main.{s}") for s in ("csv", "md", "tex")), "cap")
    md = (tmp_path / "main.md").read_text()
    assert md.count("— (missing: x)") == 5 and "experiment `x` missing" in md
    points = claim_points(long, {})
    assert points.empty
    figure_claim(points, str(tmp_path / "claim.png"))
    assert published_rows(long, load_published()).empty  # nothing published, nothing run
