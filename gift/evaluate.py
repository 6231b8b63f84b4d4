"""Evaluation: greedy pass@1 and sampled pass@k (the unbiased estimator of Chen et al. 2021, gift.metrics)."""

from __future__ import annotations

from .metrics import pass_at_k
from .metrics import summarise as _summarise
from .seeding import derive

__all__ = ["generate_samples", "pass_at_k", "score_samples", "score_samples_evalplus", "summarise", "uses_evalplus"]


def generate_samples(
    backend,
    problems: list[dict],
    *,
    n_samples: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    layout,
    seed: int,
    label: str,
) -> list[dict]:
    """Greedy completions (pass@1) and ``n_samples`` sampled ones (pass@k) per problem, made programs by
    the layout (the authors' evaluation cut in the ``authors`` layout)."""
    from .chain import _stops

    prompts = [layout.code_prompt(backend.tok, p["description"], p) for p in problems]
    common = dict(max_new_tokens=max_new_tokens, stop=_stops(layout, problems, "eval"), fence_stop=layout.fence_stop)
    greedy = backend.generate(
        prompts, n=1, temperature=0.0, seed=derive(seed, label, "greedy"), desc=f"eval {label}: greedy", **common
    )
    rows = []
    for p, prompt, out in zip(problems, prompts, greedy, strict=True):
        rows.append(
            {
                "task_id": p["task_id"],
                "mode": "greedy",
                "sample": 0,
                "raw": out[0],
                "code": layout.extract(out[0], p, prompt, "eval"),
            }
        )
    if n_samples > 0:
        sampled = backend.generate(
            prompts,
            n=n_samples,
            temperature=temperature,
            top_p=top_p,
            seed=derive(seed, label, "sampled"),
            desc=f"eval {label}: sampled",
            **common,
        )
        for p, prompt, outs in zip(problems, prompts, sampled, strict=True):
            for j, out in enumerate(outs):
                rows.append(
                    {
                        "task_id": p["task_id"],
                        "mode": "sampled",
                        "sample": j,
                        "raw": out,
                        "code": layout.extract(out, p, prompt, "eval"),
                    }
                )
    return rows


def score_samples(
    problems: list[dict],
    samples: list[dict],
    *,
    timeout_s: float,
    workers: int | None,
    ks: list[int],
    harness: str = "strict",
):
    """Run every sample against its problem's tests; per-sample results and the score summary."""
    from .chain import exec_row
    from .sandbox import execute

    by_id = {p["task_id"]: p for p in problems}
    rows = [
        exec_row(by_id[s["task_id"]], s["code"], f"{s['task_id']}#{s['mode']}#{s['sample']}", timeout_s, harness)
        for s in samples
    ]
    verdicts = execute(rows, workers=workers, progress=True)
    results = [
        {
            "task_id": s["task_id"],
            "mode": s["mode"],
            "sample": s["sample"],
            "passed": bool(v["passed"]),
            "status": v["status"],
            "tests_passed": v["tests_passed"],
            "tests_total": v["tests_total"],
            "detail": v.get("detail", ""),
        }
        for s, v in zip(samples, verdicts, strict=True)
    ]
    per_problem, scores = summarise(problems, results, ks)
    return results, per_problem, dict(scores, evaluator="tests")


def summarise(problems: list[dict], results: list[dict], ks: list[int], key: str = "passed"):
    """Per-problem rows (``task_id``, ``greedy_passed``, ``n``, ``c``, ``pass@k``) and the mean scores
    (``n_problems``, ``pass@1_greedy``, ``pass@k``) of per-sample ``results`` (``task_id``, ``mode``
    greedy | sampled, the verdict under ``key``); pass@k only when every problem has k sampled completions."""
    per_task, scores = _summarise(results, ks, order=[p["task_id"] for p in problems], key=key)
    rows = [
        {
            "task_id": r["task_id"],
            "greedy_passed": bool(r["greedy"]),
            "n": r["n"],
            "c": r["c"],
            **{k: v for k, v in r.items() if k.startswith("pass@")},
        }
        for r in per_task
    ]
    return rows, {"n_problems": len(rows), **scores}


def uses_evalplus(problems: list[dict]) -> bool:
    """True when the test problems carry EvalPlus inputs (MBPP+ / HumanEval+ release files)."""
    return bool(problems) and all("base_input" in p and "plus_input" in p for p in problems)


def score_samples_evalplus(
    problems: list[dict],
    samples: list[dict],
    expected: dict | str,
    *,
    workers: int | None,
    ks: list[int],
    min_time_limit: float = 1.0,
    gt_time_limit_factor: float = 4.0,
):
    """EvalPlus-style scoring (gift.evalplus) of the workflow's samples: both benchmarks, e.g. MBPP
    (base inputs) and MBPP+ (base + plus inputs). The headline scores (top-level keys, used by the
    tables and the comparison with the paper) are the plus benchmark's; ``benchmarks`` holds both."""
    from . import evalplus as E

    if isinstance(expected, str):
        expected = E.load_expected(expected, problems)  # ValueError naming the file if computed for other problems
    res = E.evaluate(
        problems,
        [dict(s, index=s["sample"]) for s in samples],
        expected,
        workers=workers,
        ks=ks,
        min_time_limit=min_time_limit,
        gt_time_limit_factor=gt_time_limit_factor,
        progress=True,
    )
    results = []
    for s, v in zip(samples, res["samples"], strict=True):
        plus = v["base"] if v["plus"] is None else v["plus"]
        results.append(
            {
                "task_id": s["task_id"],
                "mode": s["mode"],
                "sample": s["sample"],
                "passed": bool(plus),
                "passed_base": bool(v["base"]),
                "status": v["status"],
                "tests_passed": v["tests_passed"],
                "tests_total": v["tests_total"],
                "detail": v.get("detail", ""),
            }
        )
    base_name, plus_name = E.benchmark_names(problems)
    base, plus = res["scores"]["base"], res["scores"]["plus"]
    headline = plus if plus is not None else base
    per_problem = []
    for r in res["per_task"]:
        c_head = r["c_plus"] if r["c_plus"] is not None else r["c_base"]
        g_head = r["greedy_plus"] if r["greedy_plus"] is not None else r["greedy_base"]
        per_problem.append(
            {
                "task_id": r["task_id"],
                "greedy_passed": bool(g_head),
                "n": r["n"],
                "c": c_head,
                **{k: v for k, v in r.items() if k.startswith("pass@")},
                "greedy_passed_base": bool(r["greedy_base"]),
                "c_base": r["c_base"],
            }
        )
    benchmarks = {base_name: base} if plus is None else {base_name: base, plus_name: plus}
    scores = dict(
        headline,
        n_problems=len(problems),
        evaluator="evalplus",
        headline=plus_name if plus is not None else base_name,
        benchmarks=benchmarks,
        notes=res["notes"],
    )
    return results, per_problem, scores
