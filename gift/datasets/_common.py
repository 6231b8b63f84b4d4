"""Helpers shared by the dataset adapters: the error type, row checks, local file readers."""

from __future__ import annotations

import ast
import gzip
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..io import parse_jsonl

# every key a problem carries (adapters may add more, e.g. ``fn_name``, ``difficulty``, ``plus_input``)
PROBLEM_KEYS = ("task_id", "description", "reference", "tests", "setup", "format", "entry_point", "example", "header")

# file names a split may have inside a dataset folder, by preference
SPLIT_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")
SPLIT_ALIASES = {
    "validation": ("validation", "valid", "val", "dev"),
    "valid": ("valid", "validation", "val", "dev"),
    "val": ("val", "valid", "validation", "dev"),
    "dev": ("dev", "valid", "validation", "val"),
}


class DataError(ValueError):
    """A malformed dataset row or an unusable dataset path; the message names the file and row."""


def need(row: Any, keys: Iterable[str], where, i) -> None:
    """``row`` is a dict holding every key in ``keys``, else DataError '<where>: row <i>: ...'."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: row {i}: expected a JSON object, got {type(row).__name__}")
    for k in keys:
        if k not in row:
            raise DataError(f"{where}: row {i}: missing key '{k}'")


def need_type(row: dict, key: str, types, where, i, what: str | None = None) -> Any:
    """``row[key]`` has one of ``types``, else DataError naming the key and the type found."""
    v = row[key]
    if not isinstance(v, types):
        names = what or " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise DataError(f"{where}: row {i}: '{key}' must be {names}, got {type(v).__name__}")
    return v


def need_str_list(row: dict, key: str, where, i, nonempty: bool = True) -> list[str]:
    v = row[key]
    if not isinstance(v, list) or (nonempty and not v) or not all(isinstance(t, str) for t in v):
        raise DataError(f"{where}: row {i}: '{key}' must be a {'non-empty ' if nonempty else ''}list of strings")
    return list(v)


def function_header(code: str, entry_point: str | None = None) -> str:
    """Import lines and the ``def`` line of ``entry_point`` (or the last top-level function)."""
    lines = code.replace("\r\n", "\n").split("\n")
    imports = [ln for ln in lines if re.match(r"^(import|from)\s+\w", ln)]
    defs = [ln for ln in lines if re.match(r"^def\s+\w+", ln)]
    chosen = None
    for ln in defs:
        if entry_point and re.match(rf"^def\s+{re.escape(entry_point)}\s*\(", ln):
            chosen = ln
    if chosen is None and defs:
        chosen = defs[-1]
    out = imports + ([chosen.rstrip()] if chosen else [])
    return "\n".join(out) + "\n" if out else ""


def called_name(test: str) -> str | None:
    """The function an MBPP-style assert calls (``assert f(...) == ...`` -> ``f``)."""
    m = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\(|math\.isclose\(|abs\()?\s*([A-Za-z_]\w*)\s*\(", test)
    return m.group(1) if m else None


def as_assert(test: str) -> str:
    """CodeInsight ships some tests as bare comparisons (``test(1,2) == 3``): make them assertions."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return test
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Compare):
        return "assert " + test.strip()
    return test


def split_asserts(source: str, where, i) -> tuple[list[str], str]:
    """Split a script of asserts (MBPP+'s ``assertion``) into (one test per assert, the other
    top-level statements such as ``import math`` joined as setup)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise DataError(f"{where}: row {i}: 'assertion' is not valid Python ({e.msg}, line {e.lineno})") from None
    tests, setup = [], []
    for node in tree.body:
        seg = ast.get_source_segment(source, node)
        (tests if isinstance(node, ast.Assert) else setup).append(seg)
    if not tests:
        raise DataError(f"{where}: row {i}: 'assertion' holds no assert statement")
    # a few MBPP+ rows call math.isclose without importing math: import such stdlib modules
    bound = {
        a.asname or a.name.split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    bound |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = sorted(
        {
            n.value.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id in sys.stdlib_module_names
            and n.value.id not in bound
        }
    )
    setup = [f"import {m}" for m in used] + setup
    return tests, "\n".join(setup)


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a local data file: JSON lines (``.jsonl``, ``.jsonl.gz``), a JSON list (``.json``,
    ``.json.gz``; also ``{"data"|"rows"|"problems": [...]}``) or parquet (needs pandas + pyarrow).
    A malformed line fails with '<file>:<line>: not valid JSON'."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    if name.endswith(".parquet"):
        try:
            import pandas as pd

            return pd.read_parquet(path).to_dict(orient="records")
        except ImportError as e:
            raise DataError(f"{path}: reading parquet needs pandas and pyarrow ({e})") from None
    opener = gzip.open if name.endswith(".gz") else open
    base = name[:-3] if name.endswith(".gz") else name
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            if base.endswith(".json"):
                text = f.read()
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    # a .json file may hold JSON lines after all
                    if e.msg == "Extra data":
                        return _jsonl(text.splitlines(), path)
                    raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
                if isinstance(obj, dict):
                    for key in ("data", "rows", "problems", "instances"):
                        if isinstance(obj.get(key), list):
                            obj = obj[key]
                            break
                    else:  # {id: row, ...}
                        obj = [
                            dict(v, **({"problem_id": k} if isinstance(v, dict) and "problem_id" not in v else {}))
                            if isinstance(v, dict)
                            else v
                            for k, v in obj.items()
                        ]
                if not isinstance(obj, list):
                    raise DataError(f"{path}: expected a JSON list of rows, got {type(obj).__name__}")
                return obj
            return _jsonl(f, path)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None


def _jsonl(lines, path) -> list[dict]:
    return parse_jsonl(lines, path, DataError)


def split_file(folder: Path, split: str) -> Path | None:
    """``<folder>/<split>.jsonl`` (or .jsonl.gz, .json, .json.gz, .parquet; ``validation`` also
    matches ``valid``/``val``/``dev``), or None."""
    for name in SPLIT_ALIASES.get(split, (split,)):
        for suf in SPLIT_SUFFIXES:
            p = folder / f"{name}{suf}"
            if p.is_file():
                return p
    return None
