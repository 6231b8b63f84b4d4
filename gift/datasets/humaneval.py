"""HumanEval (Chen et al. 2021) and HumanEval+ (EvalPlus). One split, ``test``.

HumanEval release ``HumanEval.jsonl.gz``: ``task_id`` (``HumanEval/N``), ``prompt`` (imports,
helpers, the signature and docstring), ``entry_point``, ``canonical_solution`` (the body only),
``test`` (source defining ``check(candidate)``). HumanEval+ release ``HumanEvalPlus[-<v>].jsonl[.gz]``
has the same keys plus ``contract``, ``base_input``, ``plus_input``, ``atol``; its ``test`` is the
original HumanEval check. The hub copy ``hf:evalplus/humanevalplus`` has only ``task_id, prompt,
canonical_solution, entry_point, test``, where ``test`` checks the base and plus inputs.

A problem's ``reference`` is ``prompt + canonical_solution``; ``tests`` is ``[test]`` (format
``humaneval``); ``description`` is the entry point's docstring; the original ``prompt`` is kept for
HumanEval-style completion prompts; ``base_input``/``plus_input``/``atol``/``contract`` are kept when
present. A HumanEval+ row without ``test`` gets a differential check: the candidate must match the
canonical solution on ``base_input`` (within ``atol`` for floats).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from ._common import DataError, function_header, need, need_type
from .sources import split_rows

HUB_REPOS = {"humaneval": "openai/openai_humaneval", "humanevalplus": "evalplus/humanevalplus"}

_DIFF_CHECK = """
def check(candidate):
    import copy as _copy, json as _json, math as _math
    _ns = {{}}
    exec({ref!r}, _ns)
    _reference = _ns[{entry!r}]
    _atol = {atol!r}

    def _same(exp, got):
        if exp == got:
            return True
        if isinstance(exp, float) or isinstance(got, float):
            try:
                return abs(exp - got) <= _atol or (_math.isnan(exp) and _math.isnan(got))
            except TypeError:
                return False
        if isinstance(exp, (list, tuple)) and isinstance(got, (list, tuple)):
            return len(exp) == len(got) and all(_same(x, y) for x, y in zip(exp, got))
        return False

    for _args in _json.loads({inputs!r}):
        _expected = _reference(*_copy.deepcopy(_args))
        _got = candidate(*_copy.deepcopy(_args))
        assert _same(_expected, _got), f"input {{_args!r}}: expected {{_expected!r}}"
"""


def differential_check(reference: str, entry_point: str, inputs: list, atol: float = 0) -> str:
    """Source of ``check(candidate)`` comparing the candidate with ``reference``'s ``entry_point``
    on every argument list in ``inputs``."""
    return _DIFF_CHECK.format(ref=reference, entry=entry_point, atol=float(atol or 0), inputs=json.dumps(inputs))


def _docstring(code: str, entry: str) -> str | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry:
            return ast.get_docstring(node)
    return None


def _load(path, split, dataset: str) -> list[dict]:
    if split not in (None, "test"):
        raise DataError(
            f"{'HumanEval+' if dataset == 'humanevalplus' else 'HumanEval'} has only the 'test' split, not '{split}'"
        )
    where, rows = split_rows(path, "test", default_repo=HUB_REPOS[dataset])
    problems = []
    for i, row in enumerate(rows, 1):
        need(row, ("task_id", "prompt", "entry_point", "canonical_solution"), where, i)
        for k in ("task_id", "prompt", "entry_point", "canonical_solution"):
            need_type(row, k, str, where, i)
        entry = row["entry_point"]
        reference = (row["prompt"] + row["canonical_solution"]).replace("\r\n", "\n")
        extra = {}
        for k in ("base_input", "plus_input"):
            if k in row:
                extra[k] = [] if row[k] == {} else need_type(row, k, list, where, i)
        if "atol" in row:
            if isinstance(row["atol"], bool) or not isinstance(row["atol"], (int, float)):
                raise DataError(f"{where}: row {i}: 'atol' must be a number, got {type(row['atol']).__name__}")
            extra["atol"] = row["atol"]
        if "contract" in row:
            extra["contract"] = row["contract"] or ""
        if "test" in row:
            test = need_type(row, "test", str, where, i)
        elif dataset == "humanevalplus" and "base_input" in extra:
            test = differential_check(reference, entry, extra["base_input"], extra.get("atol", 0))
        else:
            raise DataError(f"{where}: row {i}: missing key 'test'")
        if "def check(" not in test:
            raise DataError(f"{where}: row {i}: 'test' does not define check(candidate)")
        doc = _docstring(reference, entry)
        problems.append(
            {
                "task_id": row["task_id"],
                "description": (doc or row["prompt"]).strip(),
                "reference": reference,
                "tests": [test],
                "setup": "",
                "format": "humaneval",
                "entry_point": entry,
                "example": "",
                "header": function_header(reference, entry),
                "prompt": row["prompt"],
                **extra,
            }
        )
    return problems


def load_humaneval(path: str | Path, split: str | None = "test") -> list[dict]:
    return _load(path, split, "humaneval")


def load_humanevalplus(path: str | Path, split: str | None = "test") -> list[dict]:
    return _load(path, split, "humanevalplus")
