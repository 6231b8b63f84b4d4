"""The generation backend of a job in any mode: ``generation.engine: served`` gives the ``openai`` backend on a
lease of the model's server (:mod:`gift.serve.manager`); every other setting goes to
:func:`gift.backends.make_backend`, which knows no server."""

from __future__ import annotations

import os
import sys

from . import manager


def make_backend(model_path: str, gen_cfg: dict, progress: bool = True):
    """The backend that ``generation`` names, served or not (the one entry point of the rules)."""
    from ..backends import make_backend as in_process
    from ..tokens import Tokenization

    if gen_cfg.get("backend", "transformers") == "vllm" and gen_cfg.get("engine", "per_job") == "served":
        tok = Tokenization(**{k: v for k, v in (gen_cfg.get("tokenize") or {}).items() if k in ("bos", "pair")})
        return served_backend(model_path, gen_cfg, progress=progress, tokenization=tok)
    return in_process(model_path, gen_cfg, progress=progress)


def served_backend(model_path: str, gen_cfg: dict, progress: bool = True, tokenization=None):
    """The ``openai`` backend on this job's lease of the model's server (token-id prompts)."""
    from ..backends.openai import OpenAIBackend
    from ..backends.vllm import max_stop_strings
    from ..model import resolve

    model = resolve(model_path)
    model = os.path.abspath(model) if os.path.exists(model) else model  # the server may run elsewhere
    lease = manager.acquire(model, gen_cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"gift.serve: {model_path} served at {lease.url} (log {lease.log})", file=sys.stderr, flush=True)
    b = OpenAIBackend(
        model_path,
        lease.url,
        served_model=manager.SERVED_NAME,
        concurrency=manager.in_flight(gen_cfg),
        progress=progress,
        top_k=gen_cfg.get("top_k", 0),
        token_ids=True,
        tokenization=tokenization,
        log_hint=str(lease.log),
        max_stops=max_stop_strings(),  # what the server was started with (engine_env)
    )
    b.lease = lease
    return b
