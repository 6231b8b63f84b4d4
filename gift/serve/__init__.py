"""One vLLM server per model and run (``generation.engine: served``): the workflow loads each model once.

A job that generates or scores with a model asks :func:`make_backend` (:mod:`gift.serve.backend`) for it.
The first such job starts ``python -m gift.serve run <dir>``, a small watchdog process (:mod:`gift.serve.watchdog`)
that runs vLLM's OpenAI-compatible server (``vllm serve``'s entry point) for that model on a free local port;
every later job of the same model (same engine settings, same host) finds it ready and talks to it through the
``openai`` backend with token-id prompts. No server is started by hand and none outlives its run:

* each job holds a *lease* on the server while it runs (a file named by its pid and start time); a server
  with no live lease for ``generation.serve.idle_timeout_s`` stops itself;
* the server belongs to an *owner*, the Snakemake process that runs the workflow (``GIFT_SERVE_OWNER``, set
  by rules/common.smk: the main process locally, the job's own Snakemake inside a SLURM allocation); the
  watchdog stops vLLM within a second of the owner's end, however it ended (finished, failed, SIGKILL);
  Snakemake's ``onsuccess`` / ``onerror`` also stop the run's servers at once (:func:`stop_all`);
* at most ``generation.serve.max_servers`` servers run on a host: a job whose model has none waits for a
  slot, and idle servers of other models are stopped to make room (one GPU holds one model at a time);
* a fine-tuning owns the devices (``python -m gift.serve claim -- <command>``, rules/finetune.smk): while it
  runs no server starts or takes a job, and it begins only once the host's servers have stopped;
* vLLM runs in the watchdog's process group, with a parent-death signal: if the watchdog itself is killed,
  vLLM gets SIGTERM.

A server that dies makes its consumers fail with :class:`gift.backends.openai.ServerGone`, naming its log;
rerunning the workflow starts a new one. State lives under ``.snakemake/gift-serve/`` of the working
directory (``GIFT_SERVE_DIR`` overrides): per server ``spec.json``, ``state.json``, ``server.log`` and
``leases/``; ``events.log`` has one line per start and stop.

The package sits above :mod:`gift.backends`, which knows no server: :mod:`gift.serve.manager` (state, leases,
starting and stopping), :mod:`gift.serve.watchdog` (one server's life), :mod:`gift.serve.backend` (a job's
backend, served or not).
"""

from __future__ import annotations

from .backend import make_backend, served_backend
from .manager import (
    OWNER_ENV,
    ROOT_ENV,
    acquire,
    alive,
    flock_problem,
    in_flight,
    me,
    server_argv,
    state_root,
    stop_all,
)

__all__ = [
    "OWNER_ENV",
    "ROOT_ENV",
    "acquire",
    "alive",
    "flock_problem",
    "in_flight",
    "make_backend",
    "me",
    "served_backend",
    "server_argv",
    "state_root",
    "stop_all",
]
