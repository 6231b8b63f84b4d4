"""The in-context examples of the code -> description step (``gibbs.description.examples``).

``seed``      the seed problems' own (reference code, description) pairs: problem statements, which a
              small chat model needs to keep coding from the chain's descriptions (the embedded default);
``<a file>``  the authors' format: a JSON list of ``[problem index, code summary]`` pairs, the index
              counting the seed split in release order (MBPP: sanitized train + prompt + validation;
              APPS+: the validation file of one difficulty; CodeInsight: train), e.g. their
              ``MBPP/data/ict_data.json``. The example's code is that problem's reference, its description
              the curated summary ("The code is a function that ..."). The files are not shipped: give
              the path of your copy.

A missing or malformed file is a one-line ``ExamplesError`` naming the file and the entry.
"""

from __future__ import annotations

import json
from pathlib import Path


class ExamplesError(ValueError):
    pass


def read_examples_file(path: str | Path) -> list[tuple[int, str]]:
    """``[(problem index, summary), ...]`` from a file in the authors' format, checked entry by entry."""
    where = f"gibbs.description.examples: {path}"
    p = Path(path)
    if not p.is_file():
        raise ExamplesError(
            f"{where}: no such file (a JSON list of [problem index, code summary] pairs, "
            "e.g. the authors' MBPP/data/ict_data.json)"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExamplesError(f"{where}: not valid JSON ({getattr(e, 'msg', e)})") from None
    if not isinstance(data, list) or not data:
        raise ExamplesError(
            f"{where}: expected a non-empty JSON list of [problem index, code summary] pairs, "
            f"got {type(data).__name__ if not isinstance(data, list) else 'an empty list'}"
        )
    out = []
    for i, e in enumerate(data):
        if isinstance(e, str):
            raise ExamplesError(
                f"{where}: entry {i} is a string, not a [problem index, code summary] pair (the "
                "authors' released APPS introductory file has this form: its summaries name no "
                "problem, so their code is unknown; use another file or 'seed')"
            )
        if not isinstance(e, list) or len(e) != 2:
            raise ExamplesError(
                f"{where}: entry {i} must be a [problem index, code summary] pair, got {json.dumps(e)[:80]}"
            )
        idx, summary = e
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ExamplesError(f"{where}: entry {i}: the problem index must be a non-negative integer, got {idx!r}")
        if not isinstance(summary, str) or not summary.strip():
            raise ExamplesError(f"{where}: entry {i}: the code summary must be a non-empty string")
        out.append((idx, summary))
    return out


def from_file(path: str | Path, full_seed: list[dict]) -> list[dict]:
    """The file's pairs resolved against the seed split in release order: rows
    ``{task_id, index, code, description}`` (code = that problem's reference)."""
    rows = []
    for i, (idx, summary) in enumerate(read_examples_file(path)):
        if idx >= len(full_seed):
            raise ExamplesError(
                f"gibbs.description.examples: {path}: entry {i}: problem index {idx} is outside the "
                f"seed split ({len(full_seed)} problems in release order): a file for another dataset?"
            )
        p = full_seed[idx]
        if not p.get("reference", "").strip():
            raise ExamplesError(
                f"gibbs.description.examples: {path}: entry {i}: problem {p['task_id']} has no reference code"
            )
        rows.append({"task_id": p["task_id"], "index": idx, "code": p["reference"], "description": summary})
    return rows


def from_seed(seed: list[dict]) -> list[dict]:
    """Each seed problem's (reference, seed description) pair."""
    return [
        {"task_id": p["task_id"], "index": i, "code": p["reference"], "description": p["description"]}
        for i, p in enumerate(seed)
        if p.get("reference", "").strip()
    ]


def as_triples(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["task_id"], r["code"], r["description"]) for r in rows]
