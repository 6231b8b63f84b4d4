"""Paper scale is a config switch: every config/paper/*.yaml validates and its dry run shows the full DAG."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from data_standin import stand_in_data

from gift.config import errors

pytestmark = pytest.mark.slow  # a Snakemake dry run per paper config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "config/paper").glob("*.yaml"))


def test_there_is_one_config_per_model_and_dataset():
    names = {p.stem for p in CONFIGS}
    models = ["deepseek-coder-6.7b", "codellama-7b-python"]
    datasets = ["appsplus-introductory", "appsplus-interview", "mbpp", "codeinsight"]
    assert names == {f"{m}--{d}" for m in models for d in datasets}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_paper_hyperparameters(path):
    cfg = yaml.safe_load(path.read_text())
    assert errors(cfg) == []
    g = cfg["gibbs"]
    assert (g["iterations"], g["samples_per_step"], g["temperature"], g["max_new_tokens"]) == (20, 3, 1.0, 512)
    assert g["description"]["top_p"] == 0.95
    assert set(cfg["methods"]) == {"rft", "rft_rd", "gift_noppl", "gift"}
    assert cfg["selection"]["k"] == 8 and cfg["methods"]["gift"] == {
        "pool": "gibbs",
        "weighting": "softmax",
        "temperature": 2.0,
    }
    assert cfg["train"]["epochs"] == 2 and cfg["train"]["batch_size"] == 128 and cfg["train"]["lr"] == 2e-5
    assert cfg["generation"]["backend"] == "vllm" and cfg["prompt"]["layout"] == "authors"
    assert cfg["generation"]["engine"] == "served" and cfg["generation"]["data_parallel_size"] == 8
    gpus = {rule: cfg["resources"][rule].get("gpu") for rule in ("sample_codes", "describe", "rewrite", "score_ppl")}
    assert set(gpus.values()) == {8}, gpus  # a server's GPUs are held by its jobs
    assert cfg["model"]["base"] in {"deepseek-ai/deepseek-coder-6.7b-base", "codellama/CodeLlama-7b-Python-hf"}
    assert "deepspeed_zero2" in cfg["train"]["launcher"]


def examples_override(tmp_path) -> str:
    """The authors' in-context example files are not on this machine: a file in their format stands in."""
    f = tmp_path / "examples.yaml"
    f.write_text(f"gibbs: {{description: {{examples: {ROOT / 'tests/fixtures/ict/ict_data.json'}}}}}\n")
    return str(f)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_dry_run_shows_the_full_dag(path, tmp_path):
    extra = [examples_override(tmp_path)] if "introductory" not in path.stem else []
    stand_in_data(path, tmp_path)  # the full releases are not in the repository: the dry run only checks paths
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "8",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M)}
    # 20 iterations for the three samplers (Gibbs chain, RFT, RFT+RD); 19 description steps of the chain and
    # 20 rewrites of RFT+RD; 4 fine-tuned methods; analyses and comparison
    assert (
        counts["sample_codes"] == 60
        and counts["run_tests"] == 60
        and counts["describe"] == 19
        and counts["rewrite"] == 20
    )
    assert counts["score_ppl"] == 3 and counts["select"] == 4 and counts["finetune"] == 4
    # the base model, 4 methods and their first epochs (the authors evaluate every epoch)
    assert counts["evaluate_generate"] == 9 and counts["evaluate_score"] == 9 and counts["epochs_table"] == 1
    assert counts["analysis"] == 1 and counts["compare_published"] == 1
    # the launcher through the workflow's interpreter, its config from the workflow's folder, a port per job
    launch = (
        '"$GIFT_PYTHON" -m accelerate.commands.launch --config_file "$GIFT_ROOT"/config/accelerate/deepspeed_zero2.yaml'
    )
    assert launch + " --main_process_port " in out and " -m gift.train " in out
    assert not re.search(r"(^|[\s;|&(])accelerate\s", out), "a bare accelerate in the dry run"
    # engine starts: one per generating job with per-job engines, one per distinct model when served
    spec = importlib.util.spec_from_file_location("engine_starts", ROOT / "benchmarks" / "engine_starts.py")
    es = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(es)
    starts = es.starts(es.jobs_from_dry_run(out))
    assert (starts["per_job"], starts["served"]) == (111, 9), starts


def test_the_login_node_fetches_with_until_fetch_and_nothing_else(tmp_path):
    """docs/slurm.md's route: `--until fetch` on the login node plans the hub downloads and no other job."""
    path = ROOT / "config/paper/codellama-7b-python--codeinsight.yaml"
    stand_in_data(path, tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--until", "fetch", "--snakefile"]
    cmd += [str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(path)]
    proc = subprocess.run(cmd + [examples_override(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, re.M))
    assert counts == {"fetch": "1", "total": "1"}, counts
