"""Sandboxed execution of model-written programs against tests.

Public API (stable)::

    from gift.sandbox import execute, execute_one      # (gift.execute: the old name, kept)
    results = execute(rows, workers=None, progress=False)
    res = execute_one(row)

    python -m gift.sandbox IN.jsonl OUT.jsonl [--workers N]      # or python -m gift.execute

Input row: ``id``, ``code``, ``tests`` (list[str]), ``format`` (``assert`` |
``humaneval`` | ``apps_call`` | ``apps_stdio`` | ``evalplus``), optional ``entry_point``,
``fn_name``, ``setup``, ``timeout_s`` (default 10) and ``mem_mb`` (default 4096).
``evalplus`` rows (EvalPlus-style differential tests, see docs/mbppplus.md): ``entry_point``,
``tests`` = JSON ``{"input": [args], "expected": v, "atol": a, "time_limit": s, "group": g}``
in the strict value encoding of ``gift/sandbox/child/codec.py``, optional ``dataset`` (``mbpp`` |
``humaneval``: EvalPlus's special oracles), ``stop_first`` (default true) and
``return_outputs``; the result adds ``groups`` (and ``outputs``/``times``).

Output row: ``id``, ``passed``, ``status`` (``passed`` | ``failed`` |
``timeout`` | ``error`` | ``memory`` | ``killed``), ``tests_passed``,
``tests_total``, ``duration_s``, ``detail`` (<= 300 chars).

Design (see docs/execution.md): each worker owns a long-lived *fork server*
(``gift/sandbox/child/``, a fresh ``python -I`` process started through
``unshare --net --pid --mount`` when the machine allows it, never a fork of the
caller) that has pre-imported the harness, the common stdlib and
numpy/pandas.  Per candidate it forks a child that isolates itself (new
session, fresh temp cwd, scrubbed env, rlimits, unprivileged uid, audit hook)
and reports MAC'd per-test records; the verdict is computed here from those
records only.  Exit codes and stdout of the candidate prove nothing.

Where things are: ``launch`` (how a fork server is started: namespaces, mounts, environment), ``pool``
(the fork servers, which modules they pre-import, how many), ``run`` (``execute``: dispatching rows to
servers and results back), ``verdict`` (requests from rows, verdicts from verified records), ``plus``
(the EvalPlus format), ``compare`` (APPS output comparison), ``records`` (statuses and shared helpers),
``child/`` (the server and the in-candidate harness: standard library only).
"""

from .compare import compare_call_output, compare_stdout
from .plus import decode_value, encode_value
from .pool import SERVERS_PER_CORE, sandbox_info, shutdown
from .records import FORMATS, STATUSES
from .run import execute, execute_one, main

__all__ = [
    "execute",
    "execute_one",
    "sandbox_info",
    "shutdown",
    "STATUSES",
    "FORMATS",
    "SERVERS_PER_CORE",
    "compare_call_output",
    "compare_stdout",
    "encode_value",
    "decode_value",
    "main",
]
