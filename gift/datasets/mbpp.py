"""MBPP (Austin et al. 2021), the original release ``mbpp.jsonl``: ``task_id``, ``text``, ``code``,
``test_list``, ``test_setup_code``, ``challenge_test_list``. Also reads the *sanitized* release
(``sanitized-mbpp.json``: ``task_id``, ``prompt``, ``code``, ``test_imports``, ``test_list``) and the
hub copies (``hf:google-research-datasets/mbpp``, configs ``full`` / ``sanitized``). Tests run in
the ``assert`` format."""

from __future__ import annotations

from pathlib import Path

from ._common import DataError, called_name, function_header, need, need_str_list, need_type
from .sources import split_rows

# conventional splits by task_id
MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
HUB_REPO, HUB_CONFIG = "google-research-datasets/mbpp", "full"


def load_mbpp(path: str | Path, split: str | None = None) -> list[dict]:
    """MBPP problems of ``split`` (by task id: prompt 1-10, test 11-510, validation 511-600,
    train 601-974; ``all`` or None: every row, e.g. a file of one's own). ``path``: the release file, or
    ``hf:[repo[:config]]``. A split that no row's task id falls in is a one-line DataError saying so."""
    if split == "all":
        split = None
    if split and split not in MBPP_SPLITS:
        raise DataError(f"MBPP split '{split}' (known: {', '.join(MBPP_SPLITS)}, all)")
    where, rows = split_rows(path, split, default_repo=HUB_REPO, default_config=HUB_CONFIG)
    lo, hi = MBPP_SPLITS[split] if split else (None, None)
    problems = []
    for i, row in enumerate(rows, 1):
        need(row, ("task_id", "code", "test_list"), where, i)
        if "text" not in row and "prompt" not in row:
            raise DataError(f"{where}: row {i}: missing key 'text'")
        tests = need_str_list(row, "test_list", where, i)
        text = row["text"] if "text" in row else row["prompt"]
        if not isinstance(text, str) or not isinstance(row["code"], str):
            raise DataError(f"{where}: row {i}: 'text' and 'code' must be strings")
        try:
            tid = int(row["task_id"])
        except (TypeError, ValueError):
            raise DataError(f"{where}: row {i}: 'task_id' must be an integer, got {row['task_id']!r}") from None
        if split and not (lo <= tid <= hi):
            continue
        setup = row.get("test_setup_code") or ""
        if "test_imports" in row and not setup:  # sanitized release
            setup = "\n".join(need_str_list(row, "test_imports", where, i, nonempty=False))
        if not isinstance(setup, str):
            need_type(row, "test_setup_code", str, where, i)
        code = row["code"].replace("\r\n", "\n")
        entry = called_name(tests[0])
        problems.append(
            {
                "task_id": f"mbpp/{tid}",
                "description": text.strip(),
                "reference": code,
                "tests": tests,
                "setup": setup,
                "format": "assert",
                "entry_point": entry or "",
                "example": tests[0],
                "header": function_header(code, entry),
            }
        )
    if split and rows and not problems:
        ranges = ", ".join(f"{k} {a}-{b}" for k, (a, b) in MBPP_SPLITS.items())
        raise DataError(
            f"{where}: no row's task_id is in MBPP's '{split}' split (task ids {lo}-{hi}; MBPP's splits are "
            f"task-id ranges: {ranges}): for a file of your own, set split: all"
        )
    return problems
