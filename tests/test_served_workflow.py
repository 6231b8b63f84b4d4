"""The served mode in the real workflow (tiny config, vLLM on this CPU): every generating and scoring job of
the base model talks to one `vllm serve` that the workflow starts and stops itself; a server killed in the
middle makes its jobs fail with a message naming its log, the rerun completes, and no server outlives a run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_logs import no_finetuning_beside_a_server, server_starts

from gift.serve import manager as serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
R = "results/tiny"
# every kind of job that runs the base model, the Gibbs chain's: 2 sample_codes, 1 describe, 1 score_ppl, and
# 1 evaluate_generate (the RFT pools' jobs are the same rules on other inputs); and a fine-tuning (gift_noppl:
# the chain's pool, no scoring), which must not run beside the server that stays up after the chain
TARGETS = [f"{R}/ppl/gibbs.jsonl", f"{R}/eval/base/samples.jsonl", f"{R}/checkpoints/gift_noppl"]
GENERATING = {"sample_codes": 2, "describe": 1, "score_ppl": 1, "evaluate_generate": 1}


def snakemake_cmd(workdir, served_cfg):
    smk = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    return smk + ["--configfile", str(TINY), str(served_cfg), "--cores", "2", *TARGETS]


def states(workdir):
    root = workdir / ".snakemake" / "gift-serve"
    return [json.loads(p.read_text()) for p in root.glob("*/state.json")]


def events(workdir):
    f = workdir / ".snakemake" / "gift-serve" / "events.log"
    return f.read_text().splitlines() if f.exists() else []


def nothing_left(workdir):
    """No server, watchdog or job of this working directory is still running."""
    assert all(not serve.alive(s.get("server")) and not serve.alive(s.get("watchdog")) for s in states(workdir))
    left = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout.split()
    assert left == [], subprocess.run(["ps", "-fp", ",".join(left)], capture_output=True, text=True).stdout


def test_one_server_for_all_jobs_of_a_model_a_killed_server_and_the_rerun(tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    cfg = tmp_path / "served.yaml"
    # one method: in the served mode a fine-tuning waits for every method's selected set (rules/common.smk)
    methods = "methods: {rft: null, rft_rd: null, gift: null, gift_T1: null}\n"
    cfg.write_text("generation: {backend: vllm, engine: served, batch_size: 12}\n" + methods)
    cmd = snakemake_cmd(work, cfg)

    # run 1: the server is SIGKILLed while its first job uses it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.time() + 900, None
    while time.time() < deadline and proc.poll() is None and killed is None:
        for s in states(work):
            leases = list((work / ".snakemake" / "gift-serve").glob("*/leases/*"))
            if s.get("status") == "ready" and leases and serve.alive(s.get("server")):
                killed = s
                serve.os.kill(int(s["server"].split(":")[0]), signal.SIGKILL)
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=900)
    assert killed is not None, out[-3000:]
    assert proc.returncode != 0, out[-3000:]
    logs = "".join(p.read_text(errors="replace") for p in (work / R / "logs").rglob("*.log"))
    assert f"model server {killed['url']} is not answering" in logs and "server.log" in logs, out[-3000:]
    assert any("the server exited with -9" in e for e in events(work))
    nothing_left(work)

    # run 2: the same command completes with one new server for every job of the base model (the fine-tuning
    # comes after all of them: it does not stop the server while the chain still wants it)
    n1 = len(events(work))
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"served rerun: {time.time() - t0:.0f} s")
    run2 = events(work)[n1:]
    finetunings = no_finetuning_beside_a_server(run2)  # the fine-tuning ran alone (its claim waited)
    assert finetunings == 1, run2
    assert list(server_starts(run2).values()) == [1], run2
    served = {}  # every job of the base model ran on a server (run 1's, if it finished before the kill)
    for rule in GENERATING:
        for log in (work / R / "logs" / rule).glob("*.log"):
            if "gift.serve: " in log.read_text(errors="replace") and "served at http://127.0.0.1:" in log.read_text():
                served[rule] = served.get(rule, 0) + 1
    assert served == GENERATING, served
    assert (work / R / "checkpoints/gift_noppl").is_dir()
    # the run's servers stopped when it finished (onsuccess) or for the fine-tuning, not when their idle timeout
    # ran out
    stops = [e for e in run2 if e.split()[3] == "stop"]
    assert stops and all(e.endswith("asked to stop") for e in stops), run2
    nothing_left(work)
    assert len(open(work / R / "ppl/gibbs.jsonl").readlines()) > 0
