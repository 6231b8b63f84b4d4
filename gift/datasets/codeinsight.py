"""CodeInsight (Beau & Crabbé 2024): ``task_id``, ``nl`` (the intent), ``prompt`` (intent + header),
``code`` (reference), ``tests`` (unit-test scripts run after the code; some are bare comparisons),
``libraries``, ``labels``, ``source``. Splits ``train`` / ``test``. Tests run in the ``assert`` format:
``tests`` has bare comparison lines made assertions (the strict harness), ``raw_tests`` the scripts as
released (the authors' harness, ``codeinsight.harness: authors``, see ``gift.chain.exec_row``)."""

from __future__ import annotations

from pathlib import Path

from ._common import DataError, as_assert, function_header, need, need_str_list
from .sources import split_rows


def load_codeinsight(path: str | Path, split: str = "train") -> list[dict]:
    """``path`` is the folder with ``train.jsonl`` and ``test.jsonl``, one of those files, or
    ``hf:<repo>`` (same columns)."""
    where, rows = split_rows(path, split)
    problems = []
    for i, row in enumerate(rows, 1):
        need(row, ("task_id", "nl", "code", "tests"), where, i)
        tests = need_str_list(row, "tests", where, i)
        if not isinstance(row["nl"], str) or not isinstance(row["code"], str):
            raise DataError(f"{where}: row {i}: 'nl' and 'code' must be strings")
        code = row["code"].replace("\r\n", "\n").replace("\t", "    ")
        header = function_header(code, "test")
        problems.append(
            {
                "task_id": f"codeinsight/{split}/{row['task_id']}",
                "description": row["nl"].strip(),
                "reference": code,
                "tests": [as_assert(t) for t in tests],
                "raw_tests": tests,  # as released: the authors' harness runs these (codeinsight.harness: authors)
                "setup": "",
                "format": "assert",
                "entry_point": "test",
                "example": "",
                "header": header,
            }
        )
    return problems
