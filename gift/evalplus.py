"""MBPP+ / HumanEval(+) evaluation the EvalPlus way, on the sandboxed engine.

API (see docs/mbppplus.md)::

    from gift.datasets import load_split
    from gift.evalplus import compute_expected, load_expected, evaluate

    problems = load_split("mbppplus", "MbppPlus-v0.2.0.jsonl", "test")
    expected = compute_expected(problems, "results/mbppplus-expected.json")   # cached file artifact
    res = evaluate(problems, samples, expected)       # samples: [{"task_id", "solution"}, ...]
    res["scores"]  # {"base": {"pass@1": ...}, "plus": {...}}  (MBPP and MBPP+)
    res["samples"] # per sample: task_id, index, base (bool), plus (bool: base and plus), status, detail

    python -m gift.evalplus expected --dataset mbppplus --data PATH --out EXPECTED.json
    python -m gift.evalplus evaluate --dataset mbppplus --data PATH --expected EXPECTED.json \
        --samples S.jsonl --out RESULTS.json

How (EvalPlus 0.3.1 semantics, ``evalplus/evaluate.py`` and ``evalplus/eval/__init__.py``):

* Inputs: the JSON ``base_input``/``plus_input`` lists are converted back to tuples/sets/complex
  exactly as EvalPlus's ``mbpp_deserialize_inputs`` does (:func:`deserialize_inputs`).
* Expected outputs: the canonical solution runs on every input in the sandbox (format
  ``evalplus`` of :mod:`gift.sandbox`, no comparison) once per dataset version; outputs (strict
  lossless encoding), the reference's per-input CPU and wall times and a content hash of the
  problems go to one JSON file, written atomically.  ``MBPP_OUTPUT_NOT_NONE_TASKS`` store
  ``output is not None`` as EvalPlus does.
* Candidates: one engine row per sample with the base inputs (group 0) then the plus inputs
  (group 1); the child calls ``fn(*input)`` and serialises the return value, the parent compares
  as EvalPlus (exact ``==`` on decoded values, float tolerance / ``np.allclose`` rules with the
  sticky ``atol = 1e-6`` upgrade, set-equality and not-None tasks, Mbpp 164/295/558/581 oracles,
  HumanEval ``find_zero``), stopping at the first failing input.  MBPP (base) passes when every
  base input passes; MBPP+ when every base and plus input passes.
* Time limits: per input ``max(min_time_limit, gt_time_limit_factor * t_ref)`` (EvalPlus defaults
  1.0 s and 4.0) where ``t_ref`` is the canonical solution's **CPU** time on that input, enforced
  as a CPU-time limit (EvalPlus uses wall-clock time for both); the whole row also has a wall
  limit of ``min(60, sum of the limits) + 1`` per split, as EvalPlus's per-process timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

from .evalplus_inputs import deserialize_inputs, enc_inputs
from .io import atomic_path, read_jsonl
from .metrics import summarise
from .sandbox import execute

__all__ = [
    "compute_expected",
    "load_expected",
    "evaluate",
    "deserialize_inputs",
    "problems_sha256",
    "task_sha256",
    "build_rows",
    "EXPECTED_FORMAT",
    "DEFAULT_MIN_TIME_LIMIT",
    "DEFAULT_GT_TIME_LIMIT_FACTOR",
]

EXPECTED_FORMAT = "gift-evalplus-expected/1"
DEFAULT_MIN_TIME_LIMIT = 1.0  # evalplus.config.DEFAULT_MIN_TIME_LIMIT
DEFAULT_GT_TIME_LIMIT_FACTOR = 4.0  # evalplus.config.DEFAULT_GT_TIME_LIMIT_FACTOR
MBPP_OUTPUT_NOT_NONE_TASKS = ("check_str", "text_match_three", "text_starta_endb")
HUMANEVAL_PLUS_NOTE = (
    "HumanEval+ plus inputs are not available on this machine: HumanEval is scored with the "
    "original check() tests (base only); give a HumanEvalPlus-<v>.jsonl file for HumanEval+."
)


def _kind(problem: dict) -> str:
    tid = str(problem["task_id"])
    return "mbpp" if tid.startswith("Mbpp/") else "humaneval" if tid.startswith("HumanEval/") else ""


def _has_plus(problem: dict) -> bool:
    return "base_input" in problem and "plus_input" in problem


def _atol(problem: dict) -> float:
    try:
        return float(problem.get("atol") or 0.0)
    except (TypeError, ValueError):
        return 0.0


# ------------------------------------------------------------------ hashes
def task_sha256(problem: dict) -> str:
    """Content hash of what decides a task's expected outputs."""
    keep = {k: problem.get(k) for k in ("task_id", "reference", "entry_point", "base_input", "plus_input", "atol")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=repr).encode()).hexdigest()


def problems_sha256(problems: Iterable[dict]) -> str:
    h = hashlib.sha256()
    for p in problems:
        h.update(task_sha256(p).encode())
    return h.hexdigest()


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ expected outputs
def _write_atomic(path: str, obj: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"))  # compact: the expected outputs can be large


def load_expected(path: str, problems: list[dict] | None = None) -> dict:
    """Read an expected-outputs file; with ``problems``, check that it was computed for them
    (``ValueError`` otherwise)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if data.get("format") != EXPECTED_FORMAT:
        raise ValueError(f"{path}: not a {EXPECTED_FORMAT} file")
    if problems is not None and data.get("problems_sha256") != problems_sha256(problems):
        raise ValueError(f"{path}: computed for other problems (sha256 {data.get('problems_sha256', '?')[:12]}...)")
    return data


def compute_expected(
    problems: list[dict],
    out_path: str | None = None,
    *,
    workers: int | None = None,
    timeout_s: float = 600.0,
    force: bool = False,
    dataset_path: str | None = None,
    progress: bool = False,
    chunks: int = 2,
) -> dict:
    """Expected outputs of every problem that has ``base_input``/``plus_input``: its
    ``reference`` (canonical solution) runs on each input in the sandbox.  With ``out_path``
    the result is cached there (atomic write) and re-read when the problems' content hash
    matches, unless ``force``.  Problems without EvalPlus inputs are skipped (listed in
    ``skipped``).  A reference that fails on an input leaves that input without expected output
    (task ``status: "partial"``; ``"error"`` when nothing ran).  Each task's inputs are spread
    over ``chunks`` rows (interleaved: input i goes to row i mod chunks) so that a task with a few
    heavy inputs (Mbpp/599: ~28 s of CPU) does not keep one core busy alone at the end."""
    sha = problems_sha256(problems)
    if out_path and not force and os.path.exists(out_path):
        try:
            data = load_expected(out_path)
            if data.get("problems_sha256") == sha:
                data["cache"] = "hit"
                return data
        except (ValueError, OSError):
            pass
    t0 = time.monotonic()
    rows, todo, skipped = [], [], []
    for p in problems:
        if not _has_plus(p):
            skipped.append(p["task_id"])
            continue
        tests = [{"input": a, "group": 0} for a in enc_inputs(p, "base_input")]
        tests += [{"input": a, "group": 0} for a in enc_inputs(p, "plus_input")]
        m = max(1, min(int(chunks), len(tests)))
        for k in range(m):
            rows.append(
                {
                    "id": f"{p['task_id']}@{k}",
                    "format": "evalplus",
                    "code": p["reference"],
                    "entry_point": p["entry_point"],
                    "setup": "",
                    "tests": tests[k::m],
                    "stop_first": False,
                    "return_outputs": True,
                    "timeout_s": timeout_s,
                    "dataset": _kind(p),
                }
            )
        todo.append((p, len(tests), m))
    flat = execute(rows, workers=workers, progress=progress)
    verdicts, pos = [], 0
    for _p, n_all, m in todo:  # re-interleave the chunks into one verdict per task
        parts = flat[pos : pos + m]
        pos += m
        outs, times = [None] * n_all, [None] * n_all
        for k, v in enumerate(parts):
            # a row that failed part-way may report fewer outputs than times: pairs up to the shorter
            for j, (o, tm) in enumerate(zip(v.get("outputs") or [], v.get("times") or [], strict=False)):
                outs[k + j * m], times[k + j * m] = o, tm
        bad = [v for v in parts if not v["passed"]]
        first = next((i for i, o in enumerate(outs) if o is None), None)
        detail = f"input {first} (row {bad[0]['id']}, chunk-local numbering): {bad[0]['detail']}" if bad else ""
        verdicts.append(
            {
                "passed": not bad,
                "detail": detail,
                "outputs": outs if any(v.get("outputs") for v in parts) else None,
                "times": times,
            }
        )
    tasks = {}
    for (p, _, _), v in zip(todo, verdicts, strict=True):
        nb = len(p.get("base_input") or [])
        n_all = nb + len(p.get("plus_input") or [])
        outs, times = v.get("outputs") or [None] * n_all, v.get("times") or []
        t = {
            "entry_point": p["entry_point"],
            "atol": _atol(p),
            "kind": _kind(p),
            "sha256": task_sha256(p),
            "status": "ok" if v["passed"] else "error" if not v.get("outputs") else "partial",
            "detail": "" if v["passed"] else v["detail"],
            "missing": [],
        }
        vals, tcpu, twall = [], [], []
        for i, o in enumerate(outs):
            if o is None:  # the reference failed on this input: candidates fail it too
                vals.append(None)
                t["missing"].append(i)
            else:
                j = json.loads(o)
                if t["kind"] == "mbpp" and p["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS:
                    j = j is not None  # evalplus trusted_exec(output_not_none=True)
                vals.append(j)
            tm = times[i] if i < len(times) and times[i] else [None, None]
            tcpu.append(tm[0])
            twall.append(tm[1])
        t.update(
            base=vals[:nb],
            plus=vals[nb:],
            base_time=tcpu[:nb],
            plus_time=tcpu[nb:],
            base_wall=twall[:nb],
            plus_wall=twall[nb:],
        )
        tasks[p["task_id"]] = t
    data = {
        "format": EXPECTED_FORMAT,
        "problems_sha256": sha,
        "dataset_sha256": _file_sha256(dataset_path) if dataset_path else None,
        "n_tasks": len(tasks),
        "n_errors": sum(t["status"] != "ok" for t in tasks.values()),
        "skipped": skipped,
        "seconds": round(time.monotonic() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "tasks": tasks,
    }
    if out_path:
        _write_atomic(out_path, data)
    data["cache"] = "miss"
    return data


# ------------------------------------------------------------------ candidates
def _solution(sample: dict, problem: dict) -> str:
    if "solution" in sample:
        return sample["solution"] or ""
    if "code" in sample:
        return sample["code"] or ""
    if "completion" in sample:  # EvalPlus: prompt + completion
        return problem.get("prompt", "") + sample["completion"]
    return ""


def _limits(times: list, min_time_limit: float, factor: float) -> list[float]:
    return [max(min_time_limit, factor * (t or 0.0)) for t in times]


def build_rows(
    problems: list[dict],
    samples: list[dict],
    expected: dict,
    *,
    base_only: bool = False,
    min_time_limit: float = DEFAULT_MIN_TIME_LIMIT,
    gt_time_limit_factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR,
    mem_mb: int = 4096,
    humaneval_timeout_s: float = 3.0,
) -> tuple[list[dict], list[str]]:
    """Engine rows for ``samples`` (one row per sample) and notes.  A sample whose task has no
    expected outputs (or whose reference failed) gets a row that fails with that reason."""
    by_id = {p["task_id"]: p for p in problems}
    exp_tasks = (expected or {}).get("tasks", {})
    cache: dict[str, list] = {}
    notes: set[str] = set()
    rows = []
    for k, s in enumerate(samples):
        tid = s["task_id"]
        p = by_id.get(tid)
        rid = f"{tid}#{s.get('index', k)}"
        if p is None:
            rows.append(
                {
                    "id": rid,
                    "format": "evalplus",
                    "code": "",
                    "entry_point": "-",
                    "tests": [],
                    "_missing": f"task {tid} not in the problems",
                }
            )
            continue
        code = _solution(s, p)
        if not _has_plus(p):  # original HumanEval: check() of the release
            notes.add(
                HUMANEVAL_PLUS_NOTE if _kind(p) == "humaneval" else f"{tid}: no EvalPlus inputs, scored with its tests"
            )
            rows.append(
                {
                    "id": rid,
                    "format": p.get("format", "humaneval"),
                    "code": code,
                    "tests": p["tests"],
                    "entry_point": p.get("entry_point"),
                    "setup": p.get("setup", ""),
                    "timeout_s": humaneval_timeout_s,
                    "mem_mb": mem_mb,
                }
            )
            continue
        e = exp_tasks.get(tid)
        why = None
        if e is None:
            why = "no expected outputs for this task"
        elif e.get("sha256") != task_sha256(p):
            why = "expected outputs were computed for another version of this task"
        elif e.get("status") not in ("ok", "partial"):
            why = "reference solution failed: " + str(e.get("detail", ""))
        if why:
            rows.append(
                {
                    "id": rid,
                    "format": "evalplus",
                    "code": code,
                    "entry_point": p["entry_point"],
                    "tests": [],
                    "_missing": why,
                }
            )
            continue
        if tid not in cache:
            atol = _atol(p)
            nb = len(e["base"])
            if e.get("missing"):  # an opaque expected value equals nothing: the input fails
                why = str(e.get("detail"))[:120]
                gone = {"$": "obj", "n": f"no expected output (the reference failed: {why})"}
                e = dict(
                    e,
                    base=[gone if i in e["missing"] else x for i, x in enumerate(e["base"])],
                    plus=[gone if nb + i in e["missing"] else x for i, x in enumerate(e["plus"])],
                )
            lim_b = _limits(e["base_time"], min_time_limit, gt_time_limit_factor)
            # test dicts (the engine also takes their JSON text); one list object per task, so
            # gift.sandbox parses it once for all the task's samples
            tests = [
                {"input": a, "expected": x, "atol": atol, "time_limit": lim, "group": 0}
                for a, x, lim in zip(enc_inputs(p, "base_input"), e["base"], lim_b, strict=True)
            ]
            if not base_only:
                lim_p = _limits(e["plus_time"], min_time_limit, gt_time_limit_factor)
                tests += [
                    {"input": a, "expected": x, "atol": atol, "time_limit": lim, "group": 1}
                    for a, x, lim in zip(enc_inputs(p, "plus_input"), e["plus"], lim_p, strict=True)
                ]
            cache[tid] = tests
        rows.append(
            {
                "id": rid,
                "format": "evalplus",
                "code": code,
                "entry_point": p["entry_point"],
                "tests": cache[tid],
                "dataset": _kind(p),
                "stop_first": True,
                "mem_mb": mem_mb,
            }
        )
    return rows, sorted(notes)


def evaluate(
    problems: list[dict],
    samples: list[dict],
    expected: dict | str | None,
    *,
    workers: int | None = None,
    base_only: bool = False,
    min_time_limit: float = DEFAULT_MIN_TIME_LIMIT,
    gt_time_limit_factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR,
    ks: Iterable[int] = (1, 10, 100),
    mem_mb: int = 4096,
    humaneval_timeout_s: float = 3.0,
    progress: bool = False,
) -> dict:
    """Per-sample verdicts and scores.

    ``samples``: dicts with ``task_id`` and ``solution`` (full program; ``code`` or EvalPlus's
    ``completion`` also accepted), optionally ``mode`` (``greedy`` | ``sampled``).
    ``expected``: from :func:`compute_expected` / :func:`load_expected`, or a path.
    Returns ``{"samples": [...], "per_task": [...], "scores": {"base": {...}, "plus": {...}|None},
    "n_tasks", "n_samples", "notes"}``: per sample ``base`` (all base inputs pass: MBPP /
    HumanEval) and ``plus`` (all base and plus inputs pass: MBPP+ / HumanEval+; ``None`` when the
    task has no plus inputs), ``status``, ``detail``, ``tests_passed``, ``tests_total``.
    Scores: ``pass@k`` (unbiased estimator, mean over tasks, for every k <= the smallest number
    of samples per task, as EvalPlus) and, when samples carry ``mode``, ``pass@1_greedy``."""
    if isinstance(expected, str):
        expected = load_expected(expected)
    samples = list(samples)
    rows, notes = build_rows(
        problems,
        samples,
        expected or {},
        base_only=base_only,
        min_time_limit=min_time_limit,
        gt_time_limit_factor=gt_time_limit_factor,
        mem_mb=mem_mb,
        humaneval_timeout_s=humaneval_timeout_s,
    )
    run_idx = [i for i, r in enumerate(rows) if "_missing" not in r]
    verdicts: list[dict | None] = [None] * len(rows)
    for i, v in zip(run_idx, execute([rows[i] for i in run_idx], workers=workers, progress=progress), strict=True):
        verdicts[i] = v
    results = []
    per_task_idx: dict[str, int] = {}
    for s, r, v in zip(samples, rows, verdicts, strict=True):
        tid = s["task_id"]
        idx = per_task_idx.get(tid, 0)
        per_task_idx[tid] = idx + 1
        res = {"task_id": tid, "index": s.get("index", idx), "mode": s.get("mode")}
        if v is None:
            res.update(
                base=False,
                plus=False if not base_only else None,
                status="error",
                detail=r["_missing"],
                tests_passed=0,
                tests_total=0,
            )
        elif r["format"] != "evalplus":
            res.update(
                base=bool(v["passed"]),
                plus=None,
                status=v["status"],
                detail=v["detail"],
                tests_passed=v["tests_passed"],
                tests_total=v["tests_total"],
            )
        else:
            g = v.get("groups") or []
            base = bool(g and g[0]["passed"])
            plus = None if base_only else bool(base and (len(g) < 2 or g[1]["passed"]))  # no plus inputs: as base
            res.update(
                base=base,
                plus=plus,
                status=v["status"],
                detail=v["detail"],
                tests_passed=v["tests_passed"],
                tests_total=v["tests_total"],
            )
        results.append(res)
    return {**_scores(problems, results, ks, base_only), "samples": results, "notes": notes}


def _scores(problems: list[dict], results: list[dict], ks: Iterable[int], base_only: bool) -> dict:
    """Per-task counts and mean scores of both benchmarks (``gift.metrics.summarise``): tasks with samples,
    in the problems' order; the plus benchmark is None when a task has no plus verdict."""
    have = {r["task_id"] for r in results}
    order = [p["task_id"] for p in problems if p["task_id"] in have]
    base_rows, base = summarise(results, ks, order=order, key="base")
    plus_rows, plus = (None, None) if base_only else summarise(results, ks, order=order, key="plus")
    if plus_rows is not None and (not plus_rows or any(r["c"] is None for r in plus_rows)):
        plus_rows, plus = None, None
    per_task = []
    for i, b in enumerate(base_rows):
        q = plus_rows[i] if plus_rows else None
        head = q or b  # the headline benchmark's per-task pass@k: plus where it applies
        per_task.append(
            {
                "task_id": b["task_id"],
                "n": b["n"],
                "c_base": b["c"],
                "c_plus": q["c"] if q else None,
                "greedy_base": b["greedy"],
                "greedy_plus": q["greedy"] if q else None,
                **{k: v for k, v in head.items() if k.startswith("pass@")},
            }
        )
    missing = [p["task_id"] for p in problems if p["task_id"] not in have]
    return {
        "scores": {"base": base, "plus": plus},
        "per_task": per_task,
        "n_tasks": len(per_task),
        "n_samples": len(results),
        "tasks_without_samples": len(missing),
    }


BENCHMARK_NAMES = {"mbpp": ("MBPP", "MBPP+"), "humaneval": ("HumanEval", "HumanEval+")}


def benchmark_names(problems: list[dict]) -> tuple[str, str]:
    """The names of the base and the plus benchmark of a test set, e.g. ("MBPP", "MBPP+")."""
    return BENCHMARK_NAMES.get(_kind(problems[0]), ("base", "plus")) if problems else ("base", "plus")


# ------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    from .datasets import load_split

    ap = argparse.ArgumentParser(prog="python -m gift.evalplus", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("expected", "evaluate"):
        sp = sub.add_parser(name)
        sp.add_argument("--dataset", default="mbppplus", help="mbppplus | humanevalplus | humaneval")
        sp.add_argument("--data", required=True, help="dataset file")
        sp.add_argument("--workers", type=int, default=None)
        sp.add_argument("--ids", default=None, help="comma-separated task ids (default: all)")
        if name == "expected":
            sp.add_argument("--out", required=True)
            sp.add_argument("--force", action="store_true")
        else:
            sp.add_argument("--expected", required=True, help="expected-outputs file (computed if missing)")
            sp.add_argument("--samples", required=True, help="JSONL rows {task_id, solution}")
            sp.add_argument("--out", required=True, help="results JSON (atomic)")
            sp.add_argument("--base-only", action="store_true")
            sp.add_argument("--min-time-limit", type=float, default=DEFAULT_MIN_TIME_LIMIT)
            sp.add_argument("--gt-time-limit-factor", type=float, default=DEFAULT_GT_TIME_LIMIT_FACTOR)
    a = ap.parse_args(argv)
    ids = a.ids.split(",") if a.ids else None
    problems = load_split(a.dataset, a.data, "test", ids=ids)
    if a.cmd == "expected":
        d = compute_expected(problems, a.out, workers=a.workers, force=a.force, dataset_path=a.data, progress=True)
        print(f"{d['n_tasks']} tasks, {d['n_errors']} reference errors, cache {d['cache']} -> {a.out}", file=sys.stderr)
        return 0
    exp = (
        compute_expected(problems, a.expected, workers=a.workers, dataset_path=a.data)
        if any(map(_has_plus, problems))
        else {}
    )
    res = evaluate(
        problems,
        read_jsonl(a.samples),
        exp,
        workers=a.workers,
        base_only=a.base_only,
        min_time_limit=a.min_time_limit,
        gt_time_limit_factor=a.gt_time_limit_factor,
        progress=True,
    )
    _write_atomic(a.out, res)
    print(json.dumps(res["scores"]), file=sys.stderr)
    for n in res["notes"]:
        print("note:", n, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
