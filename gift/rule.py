"""Glue for the workflow's thin scripts: logging to the rule's log file, thread counts, config access."""

from __future__ import annotations

import logging
import os
import sys

_WHOLE: dict = {}  # the job's whole config (setup): settings that change how, not what (GENERATION_HOW)


def setup(smk, torch_threads: bool = True) -> dict:
    """Send this job's stderr (progress bars, warnings, tracebacks) and logging to its log file, pin the
    thread count to the rule's ``threads`` (``torch_threads=False``: a rule that never runs torch does not
    import it); return the rule's settings: the part of the config it declares
    as ``params.cfg`` (rules/common.smk, CFG_KEYS), or ``{}`` for a rule that reads no setting."""
    if smk.log:
        os.makedirs(os.path.dirname(str(smk.log[0])) or ".", exist_ok=True)
        f = open(str(smk.log[0]), "a", buffering=1)
        sys.stderr = f
        os.dup2(f.fileno(), 2)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
    )
    from .devices import log_devices
    from .hub import log_env_once

    log_env_once()  # whether this job may reach the hub, and which cache it reads
    log_devices(int((getattr(smk, "resources", None) or {}).get("gpu", 0) or 0))
    _WHOLE.clear()
    _WHOLE.update(getattr(smk, "config", None) or {})
    threads = max(1, int(getattr(smk, "threads", 1) or 1))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if torch_threads:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # rules without a model never need torch
            pass
    return dict(getattr(getattr(smk, "params", None), "cfg", None) or {})


def workers(smk) -> int:
    """Processes for the execution engine: ``execution.workers``, else the rule's threads. Read from the
    whole config, not the rule's params: it changes how fast, not what a rule writes."""
    return int((smk.config.get("execution") or {}).get("workers") or smk.threads or 1)


def generation_settings(cfg: dict, whole: dict | None = None) -> dict:
    """The backend's settings: the config's generation, tokenisation and model settings (``generation.*``,
    ``tokenize.*``, ``model.dtype`` / ``model.device``); the settings that change how it runs
    (``GENERATION_HOW``: the served mode, ...) from the job's whole config; unless ``max_model_len`` is set,
    ``context_bound``: the one derived from the prompt and generation lengths (``gift.config.max_model_len``)."""
    from .config import GENERATION_HOW, max_model_len

    whole = _WHOLE if whole is None else whole
    gen = dict(cfg.get("generation", {}))
    gen.update({k: v for k, v in (whole.get("generation") or {}).items() if k in GENERATION_HOW})
    gen.setdefault("dtype", cfg["model"].get("dtype", "float32"))
    gen.setdefault("device", cfg["model"].get("device", "auto"))
    gen["tokenize"] = cfg.get("tokenize") or {}
    if not gen.get("max_model_len"):  # the engine's bound, capped by the model's positions (engine_args)
        gen["context_bound"] = max_model_len(whole or cfg)
    return gen


def backend(cfg: dict, model_path: str):
    """The generation backend for a model folder, with :func:`generation_settings`."""
    from .model import resolve
    from .serve import make_backend

    print(f"model: {model_path} -> {resolve(model_path)}", file=sys.stderr)  # which model this job loads
    return make_backend(model_path, generation_settings(cfg))
