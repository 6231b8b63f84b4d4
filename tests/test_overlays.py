"""Config overlays as docs/configuration.md describes them, each checked by a real Snakemake dry run: a
subset of methods (a method set to null), nested ``--config`` values, and ``--replace-workflow-config``."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gift.config import from_command_line

ROOT = Path(__file__).resolve().parent.parent


def test_command_line_values_get_the_schema_types():
    cfg = {
        "selection": {"k": "6"},
        "train": {"lr": "1e-4", "epochs": "two"},
        "data": {"seed": {"limit": "null", "split": "train"}},
        "methods": {"rft": {"pool": "rft", "weighting": "uniform", "temperature": "0.5"}, "gift": None},
    }
    out = from_command_line(cfg)
    assert out["selection"]["k"] == 6 and out["train"]["lr"] == 1e-4
    assert out["train"]["epochs"] == "two"  # not a number: left for the check to name
    assert out["data"]["seed"] == {"limit": None, "split": "train"}
    assert out["methods"] == {"rft": {"pool": "rft", "weighting": "uniform", "temperature": 0.5}}


def dry_run(tmp_path, *args):
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile", str(ROOT / "Snakefile")]
    cmd += ["--directory", str(tmp_path), *args]  # Snakefile's config.yaml is the working folder's
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    counts = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M)}
    return proc, counts


@pytest.mark.slow
def test_a_subset_of_methods(tmp_path):
    overlay = ROOT / "config/examples/methods-subset.yaml"
    proc, counts = dry_run(tmp_path, "--configfile", str(ROOT / "config.yaml"), str(overlay))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert counts["finetune"] == 2 and counts["select"] == 2, counts  # rft and gift only
    assert "rewrite" not in counts  # no RFT+RD pool is sampled
    assert counts["evaluate_generate"] == 3, counts  # the base model, rft, gift


@pytest.mark.slow
def test_nested_config_on_the_command_line(tmp_path):
    default = ["--configfile", str(ROOT / "config.yaml")]  # the working folder is elsewhere: name it
    proc, counts = dry_run(tmp_path, *default, "--config", "selection={k: 6}", "methods={rft_rd: null}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert counts["finetune"] == 3, counts
    bad, _ = dry_run(tmp_path, *default, "--config", "selection={k: six}")
    lines = [ln for ln in (bad.stdout + bad.stderr).splitlines() if "error" in ln.lower()]
    assert bad.returncode != 0 and lines == ["config error: selection.k: 'six' is not of type 'integer'"], lines


@pytest.mark.slow
def test_replace_workflow_config(tmp_path):
    """--replace-workflow-config: only the given files count (here a full config with two methods)."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["methods"] = {k: cfg["methods"][k] for k in ("rft", "gift")}
    full = tmp_path / "mine.yaml"
    full.write_text(yaml.safe_dump(cfg))
    proc, counts = dry_run(tmp_path, "--replace-workflow-config", "--configfile", str(full))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert counts["finetune"] == 2, counts
