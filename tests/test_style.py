"""House style, checked in the fast suite: ruff (lint and format, configured in pyproject.toml) on the Python
code and snakefmt on the Snakemake files. The same checks run in pre-commit (.pre-commit-config.yaml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff():
    exe = Path(sys.executable).with_name("ruff")
    found = str(exe) if exe.exists() else shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: ./install.sh installs the version pinned in requirements.txt")
    return found


def _run(*cmd):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc.returncode, (proc.stdout + proc.stderr)[-4000:]


def test_ruff_check_is_clean():
    rc, out = _run(_ruff(), "check", "--no-cache", ".")
    assert rc == 0, out + "\nfix with: ruff check --fix ."


def test_ruff_format_leaves_every_file_as_it_is():
    rc, out = _run(_ruff(), "format", "--check", "--no-cache", ".")
    assert rc == 0, out + "\nfix with: ruff format ."


def test_snakefmt_check():
    rc, out = _run(sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules")
    assert rc == 0, out + "\nfix with: snakefmt Snakefile rules"


def _check_text(path, text):
    proc = subprocess.run(
        [_ruff(), "check", "--no-cache", "--stdin-filename", path, "-"],
        cwd=ROOT,
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_checks_see_a_finding_with_the_projects_configuration():
    # an unused import and an undefined name are findings in the package ...
    rc, out = _check_text("gift/_probe.py", "import os\n\nx = snakemake\n")
    assert rc != 0 and "F401" in out and "F821" in out, out
    # ... while Snakemake's injected `snakemake` is known in the rule scripts (scripts/ruff.toml)
    rc, out = _check_text("scripts/_probe.py", "x = snakemake.input[0]\n")
    assert rc == 0, out
