"""MBPP+ (EvalPlus, Liu et al. 2023), the paper's MBPP test set.

Release file ``MbppPlus-<version>.jsonl[.gz]`` (one split, ``test``): ``task_id`` (``Mbpp/N``),
``prompt`` (the MBPP text in triple quotes), ``entry_point``, ``canonical_solution``,
``base_input``, ``plus_input`` (argument lists, JSON: tuples/sets arrive as lists, see EvalPlus's
``mbpp_deserialize_inputs``), ``atol``, ``contract``, ``assertion`` (the original MBPP asserts).
(``Mbpp/793``'s empty ``plus_input`` is written ``{}``; it becomes ``[]``.) No expected outputs ship: they
come from running ``canonical_solution`` on the inputs.

A problem's ``tests`` are the ``assertion`` asserts (format ``assert``; an ``import math`` line in
``assertion`` becomes ``setup``); ``base_input``, ``plus_input``, ``atol`` and ``contract`` stay on the
problem for an MBPP+ evaluator that compares against the canonical solution.

The hub copy ``hf:evalplus/mbppplus`` has other columns (``task_id`` int, ``code``, ``prompt``,
``test_imports``, ``test_list``, ``test``): ``tests`` = ``test_list``, ``setup`` = ``test_imports``,
and its ``test`` script (base + plus inputs with expected outputs) is kept as ``plus_test``.
"""

from __future__ import annotations

from pathlib import Path

from ._common import DataError, called_name, function_header, need, need_str_list, need_type, split_asserts
from .sources import split_rows

HUB_REPO = "evalplus/mbppplus"
SPLITS = ("test",)


def _description(prompt: str) -> str:
    s = prompt.strip()
    for q in ('"""', "'''"):
        if s.startswith(q) and s.endswith(q) and len(s) >= 6:
            s = s[3:-3]
    return s.strip()


def _inputs(row: dict, key: str, where, i) -> list:
    """A list of argument lists; the v0.2.0 release writes one empty ``plus_input`` as ``{}``."""
    v = row[key]
    if v == {}:
        return []
    return need_type(row, key, list, where, i)


def load_mbppplus(path: str | Path, split: str | None = "test") -> list[dict]:
    if split not in (None, "test"):
        raise DataError(f"MBPP+ has only the 'test' split, not '{split}' (train on MBPP's splits)")
    where, rows = split_rows(path, "test", default_repo=HUB_REPO)
    problems = []
    for i, row in enumerate(rows, 1):
        if isinstance(row, dict) and "test_list" in row and "assertion" not in row:
            problems.append(_hub_row(row, where, i))
            continue
        need(
            row,
            ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol", "assertion"),
            where,
            i,
        )
        for k in ("task_id", "prompt", "entry_point", "canonical_solution", "assertion"):
            need_type(row, k, str, where, i)
        inputs = {k: _inputs(row, k, where, i) for k in ("base_input", "plus_input")}
        if isinstance(row["atol"], bool) or not isinstance(row["atol"], (int, float)):
            raise DataError(f"{where}: row {i}: 'atol' must be a number, got {type(row['atol']).__name__}")
        tests, setup = split_asserts(row["assertion"], where, i)
        code = row["canonical_solution"].replace("\r\n", "\n").strip("\n") + "\n"
        entry = row["entry_point"]
        problems.append(
            {
                "task_id": row["task_id"],
                "description": _description(row["prompt"]),
                "reference": code,
                "tests": tests,
                "setup": setup,
                "format": "assert",
                "entry_point": entry,
                "example": tests[0],
                "header": function_header(code, entry),
                "base_input": inputs["base_input"],
                "plus_input": inputs["plus_input"],
                "atol": row["atol"],
                "contract": row.get("contract", "") or "",
            }
        )
    return problems


def _hub_row(row: dict, where, i) -> dict:
    need(row, ("task_id", "code", "prompt", "test_list"), where, i)
    tests = need_str_list(row, "test_list", where, i)
    for k in ("code", "prompt"):
        need_type(row, k, str, where, i)
    imports = need_str_list(row, "test_imports", where, i, nonempty=False) if "test_imports" in row else []
    tid = row["task_id"]
    tid = tid if isinstance(tid, str) and tid.startswith("Mbpp/") else f"Mbpp/{tid}"
    code = row["code"].replace("\r\n", "\n").strip("\n") + "\n"
    entry = called_name(tests[0]) or ""
    p = {
        "task_id": tid,
        "description": _description(row["prompt"]),
        "reference": code,
        "tests": tests,
        "setup": "\n".join(imports),
        "format": "assert",
        "entry_point": entry,
        "example": tests[0],
        "header": function_header(code, entry),
    }
    if isinstance(row.get("test"), str):
        p["plus_test"] = row["test"]
    return p
