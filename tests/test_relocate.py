"""Results move with the checkout (docs/relocating.md): no rule's params, shell command or recorded code
depends on where the checkout lives.

The default workflow's DAG (60 jobs) is "run" with `--touch --forceall` over placeholder outputs: Snakemake
records each job's provenance (params, shell command, code, input and log lists, software environment) by
the same `Persistence.finished` call as a real run, without running the models. The results and .snakemake/
then move to a fresh copy of the checkout at another path, as a clone would find them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Snakemake DAGs of the default workflow (no job runs)

ROOT = Path(__file__).resolve().parent.parent
NOTHING = "Nothing to be done"


def snakemake(workdir, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def checkout(dst: Path):
    """This checkout's files (tracked and untracked, not ignored) at another path, every file written now,
    as `git clone` writes them."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, dst / rel)
    return dst


def jobs(out: str) -> Counter:
    """The job counts of a dry run ("Job stats" table), empty when nothing is to be done."""
    if NOTHING in out:
        return Counter()
    table = out[out.index("Job stats:") :].split("\n\n")[0]
    return Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"})


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """(first checkout, results and .snakemake copied into a second checkout elsewhere), the first removed."""
    a = checkout(tmp_path_factory.mktemp("first") / "gift-pipeline")
    outputs = [ln.split("\t") for ln in snakemake(a, "--summary").splitlines() if ln.count("\t") >= 5]
    for path, _, rule, *_ in outputs[1:]:  # under the header: output_file, date, rule, ...
        if rule in ("prepare_model", "finetune"):  # directory() outputs
            (a / path).mkdir(parents=True, exist_ok=True)
        else:
            (a / path).parent.mkdir(parents=True, exist_ok=True)
            (a / path).write_text("placeholder\n")
    out = snakemake(a, "--touch", "--forceall")
    assert out.count("Finished jobid") == 60
    records = [p.read_text() for p in (a / ".snakemake/metadata").rglob("*") if p.is_file()]
    assert len(records) == len(outputs) - 1 == 107  # one record per output file
    b = checkout(tmp_path_factory.mktemp("second") / "elsewhere" / "clone")
    for d in ("results", ".snakemake"):  # as cp -a / rsync -a: times kept
        shutil.copytree(a / d, b / d, symlinks=True)
    shutil.rmtree(a)
    return a, b, records


def test_recorded_provenance_names_no_checkout_path(moved):
    a, _, records = moved
    for text in records:
        r = json.loads(text)
        for field in ("params", "shellcmd", "code", "input", "log"):
            value = json.dumps(r[field])
            assert str(a) not in value and sys.executable not in value, (r["rule"], field, value[:300])
    finetune = [json.loads(t) for t in records if json.loads(t)["rule"] == "finetune"]
    assert finetune and all(r["shellcmd"].startswith('PYTHONPATH="$GIFT_ROOT"') for r in finetune)
    assert all(' "$GIFT_PYTHON" -m gift.train ' in r["shellcmd"] for r in finetune)


def test_moved_results_are_up_to_date_and_a_setting_reruns_its_dependants(moved):
    _, b, _ = moved
    # params, input lists, software environment and input times: nothing changed by the move
    assert NOTHING in snakemake(b, "-n", "--rerun-triggers", "params", "input", "software-env", "mtime")
    # the code trigger compares the scripts' modification times with the outputs' (Snakemake's
    # Job.outputs_older_than_script_or_notebook): a fresh checkout's scripts are newer than every output
    out = snakemake(b, "-n", "--rerun-triggers", "code")
    assert sum(jobs(out).values()) == 60 and "Code has changed since last execution" in out
    # the documented step after a clone: --touch marks the outputs newer than the scripts
    snakemake(b, "--touch")
    assert NOTHING in snakemake(b, "-n")  # every trigger (Snakemake's default), params and code included
    # a changed setting reruns exactly its dependants
    override = b / "temperature.yaml"
    override.write_text("methods: {gift: {pool: gibbs, weighting: softmax, temperature: 3.0}}\n")
    out = snakemake(b, "-n", "--configfile", "config.yaml", str(override))
    assert jobs(out) == Counter(
        select=1,
        finetune=1,
        evaluate_generate=1,
        evaluate_score=1,
        table=1,
        compare_published=1,
        selection_ablation=1,
        summary=1,
        all=1,
    )
    override.write_text("ppl: {expand_tabs: true}\n")  # the PPL of every pool, and what follows from it
    out = snakemake(b, "-n", "--configfile", "config.yaml", str(override))
    assert jobs(out) == Counter(
        score_ppl=3,
        select=4,
        finetune=4,
        evaluate_generate=4,
        evaluate_score=4,
        table=1,
        compare_published=1,
        selection_ablation=1,
        figures=1,
        analysis=1,
        summary=1,
        all=1,
    )
    assert os.path.isdir(b / "results/default/checkpoints/gift")
