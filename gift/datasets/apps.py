"""APPS (Hendrycks et al. 2021) and APPS+ (StepCoder, Dou et al. 2024).

Accepted layouts (``path``):

* the original release tree: ``<root>/<split>/<NNNN>/`` (or ``<root>`` = one split folder), each
  problem folder holding ``question.txt``, ``solutions.json`` (list of programs),
  ``input_output.json`` (``{"inputs": [...], "outputs": [...], "fn_name"?: str}``),
  ``metadata.json`` (``{"difficulty": ..., "url": ...}``) and, for call-based problems,
  ``starter_code.py``; missing ``solutions.json`` / ``input_output.json`` are allowed as in APPS;
* JSON rows as on the hub (``codeparrot/apps``: ``problem_id, question, solutions, input_output,
  difficulty, url, starter_code``, where ``solutions`` and ``input_output`` are JSON strings) - a
  file, or a folder with ``<split>.jsonl`` / ``.json`` (``validation`` also finds ``valid``); APPS+
  releases are such rows (a JSON list or JSON lines; already-decoded ``solutions`` /
  ``input_output`` and a top-level ``fn_name`` are accepted too);
* ``hf:codeparrot/apps`` (split ``train`` / ``test``) or any hub repo with those columns;
* APPS+ as the paper uses it, where every problem names a function: StepCoder's release rows
  (``prompt`` = the header with the problem as its docstring, ``canonical_solution``, ``fn_name``,
  ``inputs``, ``outputs``, ``input_type``, ``difficulty``) and the GiFT authors' seed rows
  (``apps+valid-<level>.json``: ``query``, ``code``, ``test`` = ``{fn_name, inputs, outputs}``,
  ``std_based``; the level is taken from the file name). Standard-input problems of these layouts run
  as ``apps_stdio`` *with* ``fn_name``: the engine calls that function with the test's stdin.

A problem with ``fn_name`` runs in the ``apps_call`` format, else ``apps_stdio``; its ``tests`` are
JSON strings ``{"input": ..., "output": ...}`` zipped from ``inputs``/``outputs`` (stdio inputs and
outputs given as lists of lines are joined with newlines). ``max_tests`` keeps the first N (the
paper filters APPS+ with the first 10); ``n_tests`` records how many the release has. Problems
without any test case are skipped (they can neither filter samples nor be evaluated); problems
without a solution keep ``reference == ""``. ``prelude`` holds the imports APPS's own harness puts
before every program (released solutions rely on them): prepend it to the code when executing.
``difficulty`` keeps only the named levels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._common import SPLIT_ALIASES, DataError, function_header, read_rows, split_file
from .sources import hub_rows, is_hub, local_path

# APPS's harness (eval/testing_util.py) puts these imports before every program, and released
# solutions rely on them (e.g. LeetCode-style ``List[int]`` annotations without an import).
# Problems carry it as ``prelude``: prepend it to a candidate's code when executing. (numpy, which
# the harness also imports, is left out: importing it costs every sandboxed run.)
APPS_PRELUDE = (
    "import sys\nimport time\nimport itertools\nfrom itertools import accumulate, product, permutations, combinations\n"
    "import collections\nfrom collections import Counter, OrderedDict, deque, defaultdict, ChainMap\n"
    "from functools import lru_cache\nimport math\n"
    "from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2\n"
    "import fractions\nfrom typing import List, Tuple\nimport random\nimport heapq\nfrom heapq import *\n"
)
DIFFICULTIES = ("introductory", "interview", "competition")
HUB_REPOS = {"apps": "codeparrot/apps", "appsplus": None}
_ID_KEYS = ("problem_id", "id", "task_id", "name")


def _difficulties(difficulty) -> set[str] | None:
    if difficulty in (None, "", [], ()):
        return None
    levels = [d.strip() for d in difficulty.split(",")] if isinstance(difficulty, str) else list(difficulty)
    bad = [d for d in levels if d not in DIFFICULTIES]
    if bad:
        raise DataError(f"APPS difficulty {bad} (known: {', '.join(DIFFICULTIES)})")
    return set(levels)


def _is_problem_dir(p: Path) -> bool:
    return p.is_dir() and (p / "question.txt").is_file()


def _tree_root(p: Path, split: str | None) -> Path | None:
    """The folder whose children are problem folders, or None."""
    cands = [p / s for s in SPLIT_ALIASES.get(split, (split,))] if split else []
    for c in cands + [p]:
        if c.is_dir():
            for child in sorted(c.iterdir()):
                if _is_problem_dir(child):
                    return c
    return None


def _json_field(value, key: str, where, i, kind) -> Any:
    """``value`` decoded from a JSON string when it is one; '' -> None."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: row {i}: '{key}' is not valid JSON ({e.msg})") from None
    if value is not None and not isinstance(value, kind):
        raise DataError(f"{where}: row {i}: '{key}' must be a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def _lines(v, what: str, where, i, k: int) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
        return "\n".join(map(str, v))
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    raise DataError(f"{where}: row {i}: stdin/stdout test {k} has a {what} of type {type(v).__name__}")


def _tests(io: dict, fn_name: str | None, where, i) -> list[str]:
    ins, outs = io.get("inputs"), io.get("outputs")
    if not isinstance(ins, list) or not isinstance(outs, list):
        raise DataError(f"{where}: row {i}: 'input_output' needs lists 'inputs' and 'outputs'")
    if len(ins) != len(outs):
        raise DataError(f"{where}: row {i}: 'input_output' has {len(ins)} inputs but {len(outs)} outputs")
    tests = []
    for k, (inp, out) in enumerate(zip(ins, outs, strict=True)):
        if fn_name:
            if not isinstance(inp, list):
                raise DataError(
                    f"{where}: row {i}: call-based test {k} input must be a list of arguments, got {type(inp).__name__}"
                )
            tests.append(json.dumps({"input": inp, "output": out}))
        else:
            tests.append(
                json.dumps({"input": _lines(inp, "input", where, i, k), "output": _lines(out, "output", where, i, k)})
            )
    return tests


def _problem(
    *, dataset, split, pid, question, io, solutions, starter, difficulty, url, fn_name, where, i, max_tests
) -> dict | None:
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: row {i}: 'question' must be a non-empty string")
    if solutions is None:
        solutions = []
    if not all(isinstance(s, str) for s in solutions):
        raise DataError(f"{where}: row {i}: 'solutions' must be a list of strings")
    if io is None:
        return None
    fn_name = io.get("fn_name") or fn_name or None
    if fn_name is not None and not isinstance(fn_name, str):
        raise DataError(f"{where}: row {i}: 'fn_name' must be a string")
    tests = _tests(io, fn_name, where, i)
    if not tests:
        return None
    n_tests = len(tests)
    if max_tests is not None:
        tests = tests[:max_tests]
    starter = starter or ""
    if not isinstance(starter, str):
        raise DataError(f"{where}: row {i}: 'starter_code' must be a string")
    p = {
        "task_id": f"{dataset}/{split}/{pid}" if split else f"{dataset}/{pid}",
        "description": question.replace("\r\n", "\n").strip(),
        "reference": solutions[0].replace("\r\n", "\n") if solutions else "",
        "tests": tests,
        "setup": "",
        "format": "apps_call" if fn_name else "apps_stdio",
        "entry_point": fn_name or "",
        "example": "",
        "header": starter.replace("\r\n", "\n"),
        "difficulty": difficulty or "",
        "url": url or "",
        "starter_code": starter,
        "n_tests": n_tests,
        "prelude": APPS_PRELUDE,
    }
    if fn_name:
        p["fn_name"] = fn_name
    return p


# APPS+ as the paper uses it: every problem names a function. Call-based problems call it with the test's
# arguments; standard-input problems call it with no argument, stdin holding the test's input and stdout
# compared (the authors' harness also binds ``stdin`` / ``stdout`` to sys.stdin / sys.stdout first).
STDIN_PRELUDE = "stdin = sys.stdin\nstdout = sys.stdout\n"
_STDIN_TYPES = {"stdin", "std", "std_based", "standard_input", "stdio", "true"}
_CALL_TYPES = {"call", "call_based", "function", "fn", "false", ""}
_DOCSTRING = re.compile(r'    """(.*?)"""\n', re.S)


def _std_based(value, where, i, key) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _STDIN_TYPES | _CALL_TYPES:
        return value.strip().lower() in _STDIN_TYPES
    raise DataError(f"{where}: row {i}: '{key}' must be true/false or 'stdin'/'call', got {value!r}")


def _fn_problem(
    *,
    dataset,
    split,
    pid,
    description,
    code,
    fn_name,
    inputs,
    outputs,
    std,
    difficulty,
    where,
    i,
    max_tests,
    starter="",
) -> dict | None:
    """An APPS+ problem whose tests call the function ``fn_name`` (with stdin patched when ``std``)."""
    if not isinstance(description, str) or not description.strip():
        raise DataError(f"{where}: row {i}: the description must be a non-empty string")
    if not isinstance(code, str) or not code.strip():
        raise DataError(f"{where}: row {i}: the reference code must be a non-empty string")
    if not isinstance(fn_name, str) or not fn_name.strip():
        raise DataError(
            f"{where}: row {i}: 'fn_name' must be a non-empty string (APPS+ names a function for every problem)"
        )
    tests = _tests({"inputs": inputs, "outputs": outputs}, None if std else fn_name, where, i)
    if not tests:
        return None
    n_tests = len(tests)
    if max_tests is not None:
        tests = tests[:max_tests]
    code = code.replace("\r\n", "\n")
    p = {
        "task_id": f"{dataset}/{split}/{pid}" if split else f"{dataset}/{pid}",
        "description": description.replace("\r\n", "\n"),
        "reference": code,
        "tests": tests,
        "setup": "",
        "format": "apps_stdio" if std else "apps_call",
        "entry_point": fn_name,
        "fn_name": fn_name,
        "example": "",
        "header": function_header(code, fn_name),
        "difficulty": difficulty or "",
        "url": "",
        "starter_code": starter or "",
        "n_tests": n_tests,
        "prelude": APPS_PRELUDE + (STDIN_PRELUDE if std else ""),
        "std_based": std,
    }
    return p


def _from_authors_row(row, where, i, *, dataset, split, max_tests, difficulty) -> dict | None:
    """The authors' APPS+ seed rows (``apps+valid-<level>.json``): ``query``, ``code``, ``test``
    (``fn_name``, ``inputs``, ``outputs``), ``std_based``, ``id``."""
    test = row["test"]
    if not isinstance(test, dict):
        raise DataError(f"{where}: row {i}: 'test' must be an object with fn_name, inputs, outputs")
    for k in ("fn_name", "inputs", "outputs"):
        if k not in test:
            raise DataError(f"{where}: row {i}: 'test' lacks '{k}'")
    pid = next((row[k] for k in _ID_KEYS if row.get(k) not in (None, "")), i - 1)
    return _fn_problem(
        dataset=dataset,
        split=split,
        pid=pid,
        description=row["query"],
        code=row["code"],
        fn_name=test["fn_name"],
        inputs=test["inputs"],
        outputs=test["outputs"],
        std=_std_based(row.get("std_based"), where, i, "std_based"),
        difficulty=row.get("difficulty") or difficulty,
        where=where,
        i=i,
        max_tests=max_tests,
    )


def _from_stepcoder_row(row, where, i, *, dataset, split, max_tests, difficulty) -> dict | None:
    """StepCoder's APPS+ release rows (the paper's test set): ``prompt`` (the function header with the
    problem as its docstring), ``canonical_solution``, ``fn_name``, ``inputs``, ``outputs``,
    ``input_type``, ``difficulty`` (``question`` / ``starter_code`` when present)."""
    prompt = row.get("prompt") or ""
    m = _DOCSTRING.search(prompt) if isinstance(prompt, str) else None
    description = m.group(1) if m else (row.get("question") or prompt)
    pid = next((row[k] for k in _ID_KEYS if row.get(k) not in (None, "")), i - 1)
    return _fn_problem(
        dataset=dataset,
        split=split,
        pid=pid,
        description=description,
        code=row["canonical_solution"],
        fn_name=row["fn_name"],
        inputs=row["inputs"],
        outputs=row["outputs"],
        std=_std_based(row.get("input_type"), where, i, "input_type"),
        difficulty=row.get("difficulty") or difficulty,
        where=where,
        i=i,
        max_tests=max_tests,
        starter=row.get("starter_code") or "",
    )


def _from_row(row, where, i, *, dataset, split, max_tests, difficulty="") -> dict | None:
    if not isinstance(row, dict):
        raise DataError(f"{where}: row {i}: expected a JSON object, got {type(row).__name__}")
    if "query" in row and "code" in row and "test" in row:
        return _from_authors_row(
            row, where, i, dataset=dataset, split=split, max_tests=max_tests, difficulty=difficulty
        )
    if "canonical_solution" in row and "fn_name" in row and "inputs" in row:
        for k in ("outputs",):
            if k not in row:
                raise DataError(f"{where}: row {i}: missing key '{k}'")
        return _from_stepcoder_row(
            row, where, i, dataset=dataset, split=split, max_tests=max_tests, difficulty=difficulty
        )
    for k in ("question", "input_output"):
        if k not in row:
            raise DataError(f"{where}: row {i}: missing key '{k}'")
    pid = next((row[k] for k in _ID_KEYS if row.get(k) not in (None, "")), i - 1)
    io = _json_field(row["input_output"], "input_output", where, i, dict)
    sols = _json_field(row.get("solutions"), "solutions", where, i, list)
    return _problem(
        dataset=dataset,
        split=split,
        pid=pid,
        question=row["question"],
        io=io,
        solutions=sols,
        starter=row.get("starter_code"),
        difficulty=row.get("difficulty"),
        url=row.get("url"),
        fn_name=row.get("fn_name"),
        where=where,
        i=i,
        max_tests=max_tests,
    )


def _read_json(f: Path):
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{f}:{e.lineno}: not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{f}: cannot read ({e})") from None


def _from_folder(d: Path, *, dataset, split, max_tests) -> dict | None:
    where = d
    if not (d / "question.txt").is_file():
        raise DataError(f"{d}: problem folder without question.txt")
    question = (d / "question.txt").read_text(encoding="utf-8")
    io = _read_json(d / "input_output.json") if (d / "input_output.json").is_file() else None
    if io is not None and not isinstance(io, dict):
        raise DataError(f"{d}/input_output.json: must be a JSON object with 'inputs' and 'outputs'")
    sols = _read_json(d / "solutions.json") if (d / "solutions.json").is_file() else None
    if sols is not None and not isinstance(sols, list):
        raise DataError(f"{d}/solutions.json: must be a JSON list of programs")
    meta = _read_json(d / "metadata.json") if (d / "metadata.json").is_file() else {}
    if not isinstance(meta, dict):
        raise DataError(f"{d}/metadata.json: must be a JSON object")
    starter = (d / "starter_code.py").read_text(encoding="utf-8") if (d / "starter_code.py").is_file() else ""
    pid = int(d.name) if d.name.isdigit() else d.name
    return _problem(
        dataset=dataset,
        split=split,
        pid=pid,
        question=question,
        io=io,
        solutions=sols,
        starter=starter,
        difficulty=meta.get("difficulty"),
        url=meta.get("url"),
        fn_name=None,
        where=where,
        i=d.name,
        max_tests=max_tests,
    )


def _rows_problems(rows: Iterable, where, **kw) -> list[dict]:
    # the authors name their per-level seed files apps+valid-<level>.json and leave the level out of the rows
    m = re.search(r"apps\+?[-_]?valid[-_](introductory|interview|competition)", str(where))
    kw.setdefault("difficulty", m.group(1) if m else "")
    out = []
    for i, row in enumerate(rows, 1):
        p = _from_row(row, where, i, **kw)
        if p is not None:
            out.append(p)
    return out


def load_apps(
    path: str | Path,
    split: str | None = "train",
    *,
    difficulty=None,
    max_tests: int | None = None,
    dataset: str = "apps",
) -> list[dict]:
    """APPS problems of ``split`` from ``path`` (see the module docstring for layouts)."""
    levels = _difficulties(difficulty)
    if max_tests is not None and (not isinstance(max_tests, int) or isinstance(max_tests, bool) or max_tests < 1):
        raise DataError(f"max_tests must be a positive integer or null, got {max_tests!r}")
    kw = dict(dataset=dataset, split=split, max_tests=max_tests)
    if is_hub(path):
        where, rows = hub_rows(path, split, default_repo=HUB_REPOS.get(dataset))
        problems = _rows_problems(rows, where, **kw)
    else:
        p = local_path(path)
        root = _tree_root(p, split) if p.is_dir() else None
        if root is not None:
            problems = []
            for d in sorted(
                (c for c in root.iterdir() if c.is_dir() and not c.name.startswith(".")),
                key=lambda c: (not c.name.isdigit(), int(c.name) if c.name.isdigit() else 0, c.name),
            ):
                prob = _from_folder(d, **kw)
                if prob is not None:
                    problems.append(prob)
        else:
            f = p
            if p.is_dir():
                f = split_file(p, split) if split else None
                if f is None:
                    raise DataError(
                        f"{p}: no APPS split '{split}' (neither {split}/NNNN/question.txt problem "
                        f"folders nor {split}.jsonl / {split}.json)"
                    )
            problems = _rows_problems(read_rows(f), f, **kw)
    if levels is not None:
        problems = [q for q in problems if q["difficulty"] in levels]
    return problems


def load_appsplus(
    path: str | Path, split: str | None = "test", *, difficulty=None, max_tests: int | None = None
) -> list[dict]:
    """APPS+ (StepCoder's refined APPS): the same layouts as APPS; no default hub repository."""
    return load_apps(path, split, difficulty=difficulty, max_tests=max_tests, dataset="appsplus")
