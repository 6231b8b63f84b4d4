"""Run Snakemake workflows on a real one-node SLURM cluster (tests/slurm/cluster.sh).

The module starts a throw-away SLURM cluster (munged, slurmctld, slurmd on this
machine; partition ``debug``), runs workflows through ``--profile profiles/slurm``
with the profile's placeholders overridden for that cluster, checks that every
rule ran as a SLURM job and that the outputs equal a local run, and stops the
cluster again.

It needs root (it installs slurm-wlm/munge with apt-get when missing and writes
/etc/slurm/slurm.conf), so it only runs when

    running as root  AND  (CI is set  OR  GIFT_TEST_SLURM=1)

e.g.  ``GIFT_TEST_SLURM=1 pytest -q tests/test_slurm.py``.  See docs/slurm.md.

Knobs: GIFT_SLURM_TEST_DIR (base of the work directories, default /var/tmp),
GIFT_SLURM_KEEP_WORKDIR=1 (keep them for inspection).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
TEST_SNAKEFILE = REPO / "tests" / "slurm" / "workflow" / "Snakefile"
SLURM_PROFILE = REPO / "profiles" / "slurm"
LOCAL_PROFILE = REPO / "profiles" / "local"
REAL_SNAKEFILE = REPO / "Snakefile"
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"
PAPER_SHAPED = REPO / "tests" / "configs" / "paper-shaped.yaml"
REAL_TARGET = "results/tiny/data/seed.jsonl"

PARTITION = "debug"  # the one partition of tests/slurm/cluster.sh
# Rules of the real workflow that the profile sends to "<gpu-partition>".
GPU_RULES = ("sample_codes", "describe", "rewrite", "score_ppl", "finetune", "evaluate_generate")


def _profile_defaults() -> list[str]:
    """The profile's own default-resources with its placeholders pointed at the test cluster: a command-line
    --default-resources replaces the profile's whole key, so every other default it ships (tasks_per_gpu)
    goes along unchanged."""
    import yaml

    shipped = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())["default-resources"]
    filled = dict(shipped, slurm_partition=PARTITION, slurm_account="test")
    return [f"{k}={v}" for k, v in filled.items()]


# Options that point the profile at the test cluster. A command-line value
# replaces the profile's whole key (e.g. all of default-resources).
CLUSTER_OVERRIDES = [
    # Snakemake caps each job's threads at --cores; the profile's `cores: 1024` would let a rule ask sbatch for
    # more CPUs than the test node has.
    "--cores",
    str(len(os.sched_getaffinity(0))),
    "--default-resources",
    *_profile_defaults(),
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--retries",
    "0",
]

# "Job 1 has been submitted with SLURM jobid 7 (log: .../slurm_logs/rule_square/7.log)."
SUBMITTED_RE = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*?/rule_([A-Za-z0-9_]+)/")


def _truthy(value: str | None) -> bool:
    return bool(value) and value.strip().lower() not in ("0", "false", "no", "off")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return (
            "SLURM tests need root (they install slurm-wlm/munge and write "
            "/etc/slurm/slurm.conf); run as root with GIFT_TEST_SLURM=1"
        )
    if not (_truthy(os.environ.get("CI")) or os.environ.get("GIFT_TEST_SLURM") == "1"):
        return (
            "SLURM tests start a real SLURM cluster on this machine; they run on CI (CI set) or with GIFT_TEST_SLURM=1"
        )
    return None


_REASON = _skip_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run a command from the repo root; stdout+stderr together in .stdout."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            cwd=kw.pop("cwd", REPO),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            **kw,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.output.decode() if isinstance(exc.output, bytes) else (exc.output or "")
        pytest.fail(f"timed out after {timeout} s: {' '.join(cmd)}\n{_tail(out)}")
    proc.elapsed = time.monotonic() - t0  # type: ignore[attr-defined]
    print(f"[{proc.elapsed:5.1f} s] rc={proc.returncode} {' '.join(cmd)}")  # type: ignore[attr-defined]
    return proc


def _snakemake(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "snakemake", *args], timeout=timeout)


def _workflow_profile_args() -> list[str]:
    """The real workflow's own profile (profiles/default) when it has one.

    Snakemake also picks up ./profiles/default as a *workflow profile* and
    errors out on a directory without config.yaml, so skip it then.
    """
    wf_profile = REPO / "profiles" / "default"
    if (wf_profile / "config.yaml").is_file() or (wf_profile / "profile.yaml").is_file():
        return []
    return ["--workflow-profile", "none"]


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start the test cluster for this module; always stop it afterwards."""
    try:
        t0 = time.monotonic()
        proc = _run(["bash", str(CLUSTER_SH), "start"], timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"tests/slurm/cluster.sh start failed:\n{_tail(proc.stdout, 80)}")
        print(f"cluster up in {time.monotonic() - t0:.1f} s")
        yield PARTITION
    finally:
        stop = _run(["bash", str(CLUSTER_SH), "stop"], timeout=120)
        if stop.returncode != 0:
            print(f"tests/slurm/cluster.sh stop failed:\n{stop.stdout}", file=sys.stderr)


@pytest.fixture(scope="module")
def workbase():
    # Not pytest's tmp_path: it lives under /tmp, which on some machines is a
    # small tmpfs; any directory the node can see works on a one-node cluster.
    base = os.environ.get("GIFT_SLURM_TEST_DIR", "/var/tmp")
    path = Path(tempfile.mkdtemp(prefix="gift-slurm-test-", dir=base))
    yield path
    if not _truthy(os.environ.get("GIFT_SLURM_KEEP_WORKDIR")):
        shutil.rmtree(path, ignore_errors=True)


def _submitted_jobs(log: str) -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {}
    for jobid, rule in SUBMITTED_RE.findall(log):
        jobs.setdefault(rule, []).append(jobid)
    return jobs


def _scontrol_job(jobid: str) -> str:
    proc = _run(["scontrol", "show", "job", jobid], timeout=30)
    return proc.stdout


def _on_slurm(directory, *targets):
    """The test Snakefile through the shipped SLURM profile on the test cluster, in ``directory``."""
    args = ["--profile", str(SLURM_PROFILE), "--workflow-profile", "none", "--snakefile", str(TEST_SNAKEFILE)]
    return _snakemake(*targets, *args, "--directory", str(directory), *CLUSTER_OVERRIDES, timeout=150)


def test_small_workflow_on_slurm(slurm_cluster, workbase):
    slurm_dir = workbase / "small-slurm"
    local_dir = workbase / "small-local"
    outputs = ["data/numbers.txt", "data/squares.txt", "results/summary.txt"]
    rules = {"generate", "square", "summarize"}

    run = _on_slurm(slurm_dir)
    assert run.returncode == 0, f"snakemake on SLURM failed:\n{_tail(run.stdout, 100)}"

    # Every rule was submitted with sbatch ...
    submitted = _submitted_jobs(run.stdout)
    assert set(submitted) == rules, f"expected one SLURM submission per rule, got {submitted}\n{_tail(run.stdout)}"
    for rule in sorted(rules):
        (jobid,) = submitted[rule]
        # ... ran inside that SLURM job (its $SLURM_JOB_ID, written by the job) ...
        seen = (slurm_dir / "jobids" / f"{rule}.txt").read_text().strip()
        assert seen == jobid, f"rule {rule}: job saw SLURM_JOB_ID={seen!r}, sbatch gave {jobid}"
        # ... on the test partition, and completed (MinJobAge keeps it in slurmctld).
        info = _scontrol_job(jobid)
        assert f"Partition={PARTITION}" in info, info
        assert "JobState=COMPLETED" in info, info

    local = _snakemake(
        "--profile",
        str(LOCAL_PROFILE),
        "--workflow-profile",
        "none",
        "--snakefile",
        str(TEST_SNAKEFILE),
        "--directory",
        str(local_dir),
        "--cores",
        "2",
        timeout=60,
    )
    assert local.returncode == 0, f"local snakemake failed:\n{_tail(local.stdout, 100)}"
    for rule in sorted(rules):
        assert (local_dir / "jobids" / f"{rule}.txt").read_text().strip() == "local"

    for out in outputs:
        a = (slurm_dir / out).read_bytes()
        b = (local_dir / out).read_bytes()
        assert a == b, f"{out} differs between SLURM and local runs"
    assert (slurm_dir / "results/summary.txt").read_text() == "sum 210\nsum_of_squares 2870\n"


def test_a_gpu_job_runs_once_and_sees_its_gpus(slurm_cluster, workbase):
    """The node's fake GPUs (GRES; tests/slurm/cluster.sh): a job of a rule with `gpu: 2` is submitted through
    the shipped profile as one task, runs once, and sees exactly 2 devices where its command runs."""
    work = workbase / "gpus"
    run = _on_slurm(work, "gpus/2.txt")
    assert run.returncode == 0, f"snakemake on SLURM failed:\n{_tail(run.stdout, 100)}"
    (jobid,) = _submitted_jobs(run.stdout)["gpus"]
    runs = (work / "runs" / "2.txt").read_text().splitlines()  # one line per copy of the command
    assert len(runs) == 1, runs
    job, devices = runs[0].split()
    assert job == jobid and len(devices.split(",")) == 2 and len(set(devices.split(","))) == 2, runs
    info = _scontrol_job(jobid)
    assert "JobState=COMPLETED" in info and "TresPerJob=gres:gpu:2" in info, info
    # one task with the rule's threads (without the profile's tasks_per_gpu: 0, NumTasks=2 and twice the CPUs)
    assert "NumTasks=1" in info and "NumCPUs=1" in info, info


def test_real_workflow_on_slurm(slurm_cluster, workbase):
    if not REAL_SNAKEFILE.is_file():
        pytest.skip(f"{REAL_SNAKEFILE.relative_to(REPO)} does not exist yet")
    if not TINY_CONFIG.is_file():
        pytest.skip(f"{TINY_CONFIG.relative_to(REPO)} does not exist yet")

    slurm_dir = workbase / "real-slurm"
    local_dir = workbase / "real-local"
    # The workflow reads its inputs (config data.path, e.g. data/mbpp/mbpp.jsonl)
    # relative to the working directory: give each work directory the repo's data/.
    for wd in (slurm_dir, local_dir):
        wd.mkdir(parents=True)
        (wd / "data").symlink_to(REPO / "data", target_is_directory=True)
    common = [
        *_workflow_profile_args(),
        "--configfile",
        str(TINY_CONFIG),
        "--snakefile",
        str(REAL_SNAKEFILE),
    ]
    # The GPU rules go to "<gpu-partition>" in the profile: send them to the test
    # partition instead, without a GPU request (the test node has no GPU).
    gpu_overrides = ["--set-resources"]
    for rule in GPU_RULES:
        gpu_overrides += [f"{rule}:slurm_partition={PARTITION}", f"{rule}:gpu=0"]

    run = _snakemake(
        REAL_TARGET,  # first: --set-resources would swallow a trailing target
        "--profile",
        str(SLURM_PROFILE),
        *common,
        "--directory",
        str(slurm_dir),
        *CLUSTER_OVERRIDES,
        *gpu_overrides,
        timeout=240,
    )
    assert run.returncode == 0, f"snakemake on SLURM failed:\n{_tail(run.stdout, 100)}"
    submitted = _submitted_jobs(run.stdout)
    assert submitted, f"no job was submitted to SLURM:\n{_tail(run.stdout)}"
    for rule, jobids in sorted(submitted.items()):
        for jobid in jobids:
            info = _scontrol_job(jobid)
            assert "JobState=COMPLETED" in info, f"rule {rule}, SLURM job {jobid}:\n{info}"

    local = _snakemake(
        REAL_TARGET,
        "--profile",
        str(LOCAL_PROFILE),
        *common,
        "--directory",
        str(local_dir),
        "--cores",
        "2",
        timeout=240,
    )
    assert local.returncode == 0, f"local snakemake failed:\n{_tail(local.stdout, 100)}"

    a = (slurm_dir / REAL_TARGET).read_bytes()
    b = (local_dir / REAL_TARGET).read_bytes()
    assert a == b, f"{REAL_TARGET} differs between SLURM and local runs"


def test_a_paper_shaped_run_in_one_allocation(slurm_cluster, workbase):
    """docs/slurm.md's route for the paper configs, on a paper config with every setting that decides how it
    runs (served vLLM with one replica per GPU, the DeepSpeed ZeRO-2 launcher, per-epoch evaluation) and the
    embedded model (tests/configs/paper-shaped.yaml): `--until fetch` where the hub is reachable, then the
    whole workflow inside one allocation with 2 (fake) GPUs. One SLURM job; one server start per model; no
    fine-tuning beside a live server; every GPU job sees the allocation's 2 GPUs; the chain's steps wait for
    nothing but each other's GPUs."""
    from collections import Counter

    from run_logs import (
        idle_seconds,
        no_finetuning_beside_a_server,
        queued_after_ready,
        server_starts,
        snakemake_jobs,
    )

    from gift.serve import manager as serve

    work = workbase / "paper-shaped"
    work.mkdir(parents=True)
    (work / "data").symlink_to(REPO / "data", target_is_directory=True)
    configs = ["--configfile", str(REPO / "config/paper/deepseek-coder-6.7b--mbpp.yaml"), str(PAPER_SHAPED)]
    smk = [sys.executable, "-m", "snakemake", "--snakefile", str(REAL_SNAKEFILE), *_workflow_profile_args()]
    fetch = _run([*smk, "--cores", "1", "--until", "fetch", *configs], timeout=300, cwd=work)  # the login node
    assert fetch.returncode == 0 and not (work / "results").exists(), _tail(fetch.stdout)  # nothing to fetch
    inner = [*smk, "--profile", str(LOCAL_PROFILE), *configs]
    ncpu = str(len(os.sched_getaffinity(0)))
    sbatch = ["sbatch", "--parsable", "--wait", "--partition", PARTITION, "--nodes", "1", "--gres", "gpu:2"]
    sbatch += ["--cpus-per-task", ncpu, "--mem", "16000", "--chdir", str(work), "--output", str(work / "job.log")]
    # DeepSpeed on its CPU accelerator (the fake GPUs run no CUDA): the job's environment, as a user's would be
    run = _run([*sbatch, "--wrap", " ".join(inner)], timeout=1800, env=dict(os.environ, DS_ACCELERATOR="cpu"))
    log = (work / "job.log").read_text(errors="replace") if (work / "job.log").exists() else ""
    assert run.returncode == 0, f"{run.stdout}\n{_tail(log, 100)}"
    out = work / "results/paper-shaped"
    assert (out / "tables/main.md").exists() and (out / "tables/epochs.md").exists(), _tail(log)

    # 1 allocation: no job was submitted from inside it (job ids only grow)
    jobid = int(run.stdout.split()[-1].split(";")[0])
    ids = re.findall(r"JobId=(\d+)", _run(["scontrol", "show", "jobs"], timeout=30).stdout)
    assert max(map(int, ids)) == jobid, ids
    # the allocation's GPUs became the workflow's `gpu` resource without the user typing it (gift.devices)
    assert re.search(r'^Provided resources: gpu=(Resource\("gpu", )?2\b', log, re.M), _tail(log, 80)

    # one server start per model: the base model and GiFT's checkpoints after epochs 1 and 2
    events = (work / ".snakemake/gift-serve/events.log").read_text().splitlines()
    starts = server_starts(events)
    assert len(starts) == 3 and set(starts.values()) == {1}, events
    assert no_finetuning_beside_a_server(events) == 1, events
    states = [json.loads(p.read_text()) for p in (work / ".snakemake/gift-serve").glob("*/state.json")]
    assert states and all(not serve.alive(s["server"]) and not serve.alive(s["watchdog"]) for s in states)

    # every GPU job saw the 2 GPUs it asked for, and so did each server that a job started
    seen = Counter()
    for rule in ("sample_codes", "describe", "score_ppl", "evaluate_generate", "finetune"):
        for job_log in (out / "logs" / rule).glob("*.log"):
            found = re.findall(r"gpu resource (\d+), CUDA_VISIBLE_DEVICES=(\S+)", job_log.read_text(errors="replace"))
            assert found and all(n == "2" and len(set(d.split(","))) == 2 for n, d in found), (job_log, found)
            seen[rule] += 1
    # (the RFT pool too: the analysis compares it with the chain's)
    assert seen == {"sample_codes": 4, "describe": 1, "score_ppl": 2, "evaluate_generate": 3, "finetune": 1}, seen
    devices = [re.search(r" CUDA_VISIBLE_DEVICES=(\S+)", e).group(1) for e in events if e.split()[3] == "start"]
    assert len(devices) == 3 and all(len(set(d.split(","))) == 2 for d in devices), events

    # the chain's steps: how long each waited after its inputs were written (only for another GPU job of the
    # run, which holds the GPUs meanwhile: no SLURM queue between them), and how long the GPUs sat idle
    jobs = snakemake_jobs(log)
    waits = queued_after_ready(jobs, {"sample_codes", "run_tests", "describe"})
    idle, span = idle_seconds(jobs, {*seen, "rewrite"})
    print(f"paper-shaped in one allocation: {len(jobs)} jobs, starts {dict(starts)}")
    print(f"chain steps waited {sum(waits.values()):.0f} s in all, at most {max(waits.values()):.0f} s: {waits}")
    print(f"GPU jobs: {span:.0f} s from the first one's start to the last one's end, {idle:.0f} s of it none ran")
    assert len(waits) == 9 and idle < span / 4, (waits, idle, span)
