"""The workflow passes `snakemake --lint` (no job runs; snakefmt and ruff: tests/test_style.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
from data_standin import stand_in_data

pytestmark = pytest.mark.slow  # snakemake --lint loads the workflow

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted((ROOT / "config" / "paper").glob("*.yaml"))
# a paper config that needs no file beyond the repository (the others name the authors' in-context example files)
PAPER_NO_FILES = [p for p in PAPER if "introductory" in p.stem][:1]


def lint(workdir, *args):
    # --directory: the lint never touches the repository's .snakemake/ (a run may be going on there)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--lint",
        "--cores",
        "2",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("configfile", [ROOT / "config.yaml"] + PAPER_NO_FILES, ids=lambda p: p.stem)
def test_snakemake_lint_reports_nothing(configfile, tmp_path):
    # the default config and a paper config (vLLM backend: the GPU env and the CUDA image)
    stand_in_data(configfile, tmp_path)  # a paper config's full data: paths checked, never read here
    proc = lint(tmp_path, "--configfile", str(configfile))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Lints for" not in out, out[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in out, out[-3000:]
