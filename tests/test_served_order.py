"""In the served mode every job of the base model comes before any fine-tuning (rules/common.smk
``base_model_work``): RFT's selected set is ready after the chain's first step, and a fine-tuning started
then would stop the base model's server (its claim on the devices) while the chain still needs it, so the
server would start twice. The order is the DAG's, planned by Snakemake's dry run here; the served run on
the test cluster (test_slurm's paper-shaped run) shows one server start per model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two Snakemake dry runs, ~10 s

ROOT = Path(__file__).resolve().parent.parent
TARGET = "results/tiny/checkpoints/rft"


def planned(tmp_path, overlay: str) -> dict[str, int]:
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "overlay.yaml").write_text(overlay)
    cmd = [sys.executable, "-m", "snakemake", TARGET, "-n", "--snakefile", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["--configfile", str(ROOT / "tests/configs/tiny.yaml"), str(tmp_path / "overlay.yaml")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = out.stdout.split("Job stats:")[1].split("total")[0]
    return {w[0]: int(w[1]) for line in stats.splitlines() if len(w := line.split()) == 2 and w[1].isdigit()}


def test_a_served_fine_tuning_waits_for_all_of_the_base_models_jobs(tmp_path):
    served = planned(tmp_path, "generation: {backend: vllm, engine: served}\n")
    # RFT's fine-tuning alone needs the chain's first step; served, it waits for every method's set (the whole
    # chain, RFT+RD's rewrites, the PPL scores) and the base model's evaluation
    assert served["finetune"] == 1 and served["evaluate_generate"] == 1 and served["rewrite"] >= 1, served
    assert served["select"] == 5 and served["describe"] >= 1, served


def test_a_per_job_fine_tuning_waits_only_for_its_own_set(tmp_path):
    alone = planned(tmp_path, "generation: {backend: transformers}\n")
    assert alone["finetune"] == 1 and alone["select"] == 1, alone
    assert "evaluate_generate" not in alone and "rewrite" not in alone and "describe" not in alone, alone
