"""The SLURM profile keeps the workflow config's resources: a dry run of a paper config through
profiles/slurm (no SLURM command is needed: sbatch & co. on PATH are failing tripwires) shows each job with the
threads, memory and time its config asks for, the GPU rules in the GPU partition; with the profile's
placeholders left in place, any run stops with one line naming them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from data_standin import stand_in_data

pytestmark = pytest.mark.slow  # Snakemake dry runs of a paper config

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "config/paper/deepseek-coder-6.7b--appsplus-introductory.yaml"  # its data: tests/data_standin.py
GPU_RULES = ("sample_codes", "describe", "rewrite", "score_ppl", "finetune", "evaluate_generate")
SLURM_TOOLS = ("sbatch", "sinfo", "squeue", "sacct", "sacctmgr", "sshare", "scontrol", "srun", "scancel")


def tripwires(tmp_path: Path) -> tuple[dict, Path]:
    """An environment whose PATH starts with SLURM commands that only record that they were called."""
    bin_dir, called = tmp_path / "bin", tmp_path / "called"
    bin_dir.mkdir(exist_ok=True)
    called.unlink(missing_ok=True)
    for tool in SLURM_TOOLS:
        (bin_dir / tool).write_text(f'#!/bin/sh\necho {tool} "$@" >> {called}\nexit 1\n')
        (bin_dir / tool).chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"), called


def dry_run(tmp_path: Path, *overrides: str):
    env, called = tripwires(tmp_path)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    stand_in_data(PAPER, work)  # the paper config's full data: paths checked, never read in a dry run
    cmd = [sys.executable, "-m", "snakemake", "-n", "--profile", str(ROOT / "profiles/slurm")]
    cmd += ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile", str(PAPER)]
    proc = subprocess.run([*cmd, *overrides], capture_output=True, text=True, timeout=300, env=env)
    # the plugin asks `scontrol show config` for MinJobAge when it checks its settings, and goes on without
    # an answer (here: the tripwire fails it); nothing else is called
    calls = called.read_text().splitlines() if called.exists() else []
    assert set(calls) <= {"scontrol show config"}, calls
    return proc


def jobs(out: str) -> list[dict]:
    """The dry run's job listing: rule, threads (1 when not printed) and resources of each job."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", out):
        m = re.match(r"(?:local)?rule (\w+):\n", block)
        if not m:
            continue
        threads = re.search(r"^    threads: (\d+)$", block, re.M)
        res = re.search(r"^    resources: (.*)$", block, re.M)
        pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        found.append({"rule": m.group(1), "threads": int(threads.group(1)) if threads else 1, **pairs})
    return found


def test_the_slurm_profile_keeps_the_configs_threads_memory_and_time(tmp_path):
    gpu = [f"{rule}:slurm_partition=gpu" for rule in GPU_RULES]
    proc = dry_run(
        tmp_path, "--default-resources", "slurm_account=proj1", "slurm_partition=cpu", "--set-resources", *gpu
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    resources = yaml.safe_load(PAPER.read_text())["resources"]
    listed = jobs(proc.stdout)
    by_rule = {j["rule"]: j for j in listed}
    assert {"finetune", "sample_codes", "run_tests", "table", "fetch"} <= set(by_rule), sorted(by_rule)
    for job in listed:
        if job["rule"] in ("all", "fetch"):  # `all` runs nothing; fetch is a local rule (no SLURM job)
            continue
        want = dict(resources["default"], **resources.get(job["rule"], {}))
        assert int(job["mem_mb"]) == want["mem_mb"] and int(job["runtime"]) == want["runtime"], job
        assert job["slurm_account"] == "proj1", job
        assert job["slurm_partition"] == ("gpu" if job["rule"] in GPU_RULES else "cpu"), job
        if "threads" in resources.get(job["rule"], {}) or job["rule"] == "prepare_model":
            assert job["threads"] == want["threads"], job
        if "gpu" in want:
            assert int(job["gpu"]) == want["gpu"], job
    # the paper's fine-tuning: what config/paper/*.yaml ask, not a profile's 64000 MB / 720 min / 8 threads
    ft = by_rule["finetune"]
    assert (ft["threads"], ft["mem_mb"], ft["runtime"], ft["gpu"]) == (32, "96000", "1440", "8")


def test_the_profiles_placeholders_stop_any_run_with_one_line(tmp_path):
    proc = dry_run(tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("profile error: placeholder resources slurm_account=<your-account> (default-resources)")
    assert "slurm_partition=<cpu-partition> (default-resources)" in last
    assert "slurm_partition=<gpu-partition> (set-resources of " + ", ".join(GPU_RULES) + ")" in last
    assert "rule " not in proc.stdout + proc.stderr  # stopped before planning any job
