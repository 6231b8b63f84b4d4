"""The execution engine's former name: everything lives in ``gift.sandbox`` (see its docstring).
``from gift.execute import execute`` and ``python -m gift.execute IN.jsonl OUT.jsonl`` keep working."""

import sys

from .sandbox import (
    FORMATS,
    SERVERS_PER_CORE,
    STATUSES,
    compare_call_output,
    compare_stdout,
    decode_value,
    encode_value,
    execute,
    execute_one,
    main,
    sandbox_info,
    shutdown,
)

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

if __name__ == "__main__":
    sys.exit(main())
