"""Glue for the workflow's thin scripts: logging to the rule's log file, thread counts, config access."""

from __future__ import annotations

import logging
import os
import sys


def setup(smk) -> dict:
    """Send this job's stderr (progress bars, warnings, tracebacks) and logging to its log file, pin the
    thread count to the rule's ``threads``; return the workflow config."""
    if smk.log:
        os.makedirs(os.path.dirname(str(smk.log[0])) or ".", exist_ok=True)
        f = open(str(smk.log[0]), "a", buffering=1)
        sys.stderr = f
        os.dup2(f.fileno(), 2)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    threads = max(1, int(getattr(smk, "threads", 1) or 1))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # rules without a model never need torch
        pass
    return smk.config


def backend(cfg: dict, model_path: str):
    from .generate import make_backend
    from .model import resolve

    print(f"model: {model_path} -> {resolve(model_path)}", file=sys.stderr)  # which model this job loads
    gen = dict(cfg.get("generation", {}))
    gen.setdefault("dtype", cfg["model"].get("dtype", "float32"))
    gen.setdefault("device", cfg["model"].get("device", "auto"))
    return make_backend(model_path, gen)


def sampler_style(cfg: dict) -> str:
    """The prompt style of the model that samples the pools (``model.sampler.prompt_style``, else the base's)."""
    return (cfg["model"].get("sampler") or {}).get("prompt_style") or cfg["model"]["prompt_style"]
