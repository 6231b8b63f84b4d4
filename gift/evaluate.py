"""Evaluation: greedy pass@1 and sampled pass@k (the unbiased estimator of Chen et al. 2021)."""

from __future__ import annotations

from math import comb

from .seeding import derive


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c pass: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def generate_samples(backend, problems: list[dict], *, n_samples: int, temperature: float, top_p: float, max_new_tokens: int,
                     layout, seed: int, label: str) -> list[dict]:
    """Greedy completions (pass@1) and ``n_samples`` sampled ones (pass@k) per problem, made programs by
    the layout (the authors' evaluation cut in the ``authors`` layout)."""
    from .chain import _stops

    prompts = [layout.code_prompt(backend.tok, p["description"], p) for p in problems]
    common = dict(max_new_tokens=max_new_tokens, stop=_stops(layout, problems, "eval"), fence_stop=layout.fence_stop)
    greedy = backend.generate(prompts, n=1, temperature=0.0, seed=derive(seed, label, "greedy"), desc=f"eval {label}: greedy", **common)
    rows = []
    for p, prompt, out in zip(problems, prompts, greedy):
        rows.append({"task_id": p["task_id"], "mode": "greedy", "sample": 0, "raw": out[0],
                     "code": layout.extract(out[0], p, prompt, "eval")})
    if n_samples > 0:
        sampled = backend.generate(prompts, n=n_samples, temperature=temperature, top_p=top_p, seed=derive(seed, label, "sampled"),
                                   desc=f"eval {label}: sampled", **common)
        for p, prompt, outs in zip(problems, prompts, sampled):
            for j, out in enumerate(outs):
                rows.append({"task_id": p["task_id"], "mode": "sampled", "sample": j, "raw": out,
                             "code": layout.extract(out, p, prompt, "eval")})
    return rows


def score_samples(problems: list[dict], samples: list[dict], *, timeout_s: float, workers: int | None, ks: list[int],
                  harness: str = "strict"):
    """Run every sample against its problem's tests; per-sample results and the score summary."""
    from .chain import exec_row
    from .execute import execute

    by_id = {p["task_id"]: p for p in problems}
    rows = [exec_row(by_id[s["task_id"]], s["code"], f"{s['task_id']}#{s['mode']}#{s['sample']}", timeout_s, harness)
            for s in samples]
    verdicts = execute(rows, workers=workers, progress=True)
    results = [{"task_id": s["task_id"], "mode": s["mode"], "sample": s["sample"], "passed": bool(v["passed"]), "status": v["status"],
                "tests_passed": v["tests_passed"], "tests_total": v["tests_total"], "detail": v.get("detail", "")}
               for s, v in zip(samples, verdicts)]
    per_problem, scores = summarise(problems, results, ks)
    return results, per_problem, dict(scores, evaluator="tests")


def summarise(problems: list[dict], results: list[dict], ks: list[int], key: str = "passed"):
    """Per-problem greedy verdict, n, c and pass@k, and the mean scores, from per-sample ``results``
    (``task_id``, ``mode`` greedy | sampled, and the verdict under ``key``). pass@k is reported only
    when every problem has at least k sampled completions."""
    per_problem = []
    by_task: dict[str, list[dict]] = {}
    for r in results:
        by_task.setdefault(r["task_id"], []).append(r)
    for p in problems:
        mine = by_task.get(p["task_id"], [])
        g = [r for r in mine if r["mode"] == "greedy"]
        s = [r for r in mine if r["mode"] == "sampled"]
        row = {"task_id": p["task_id"], "greedy_passed": bool(g and g[0][key]), "n": len(s), "c": sum(bool(r[key]) for r in s)}
        for k in ks:
            if row["n"] >= k:
                row[f"pass@{k}"] = pass_at_k(row["n"], row["c"], k)
        per_problem.append(row)
    n = len(per_problem)
    scores = {"n_problems": n, "pass@1_greedy": sum(r["greedy_passed"] for r in per_problem) / n if n else 0.0}
    for k in ks:
        vals = [r[f"pass@{k}"] for r in per_problem if f"pass@{k}" in r]
        if vals and len(vals) == n:
            scores[f"pass@{k}"] = sum(vals) / n
    return per_problem, scores


BENCHMARK_NAMES = {"mbpp": ("MBPP", "MBPP+"), "humaneval": ("HumanEval", "HumanEval+")}


def uses_evalplus(problems: list[dict]) -> bool:
    """True when the test problems carry EvalPlus inputs (MBPP+ / HumanEval+ release files)."""
    return bool(problems) and all("base_input" in p and "plus_input" in p for p in problems)


def score_samples_evalplus(problems: list[dict], samples: list[dict], expected: dict | str, *, workers: int | None,
                           ks: list[int], min_time_limit: float = 1.0, gt_time_limit_factor: float = 4.0):
    """EvalPlus-style scoring (gift.evalplus) of the workflow's samples: both benchmarks, e.g. MBPP
    (base inputs) and MBPP+ (base + plus inputs). The headline scores (top-level keys, used by the
    tables and the comparison with the paper) are the plus benchmark's; ``benchmarks`` holds both."""
    from . import evalplus as E

    if isinstance(expected, str):
        expected = E.load_expected(expected, problems)  # ValueError naming the file if computed for other problems
    res = E.evaluate(problems, [dict(s, index=s["sample"]) for s in samples], expected, workers=workers, ks=ks,
                     min_time_limit=min_time_limit, gt_time_limit_factor=gt_time_limit_factor, progress=True)
    results = []
    for s, v in zip(samples, res["samples"]):
        plus = v["base"] if v["plus"] is None else v["plus"]
        results.append({"task_id": s["task_id"], "mode": s["mode"], "sample": s["sample"], "passed": bool(plus),
                        "passed_base": bool(v["base"]), "status": v["status"], "tests_passed": v["tests_passed"],
                        "tests_total": v["tests_total"], "detail": v.get("detail", "")})
    base_name, plus_name = BENCHMARK_NAMES.get(E._kind(problems[0]), ("base", "plus")) if problems else ("base", "plus")
    per_problem, plus_scores = summarise(problems, results, ks, key="passed")
    per_base, base_scores = summarise(problems, results, ks, key="passed_base")
    for row, b in zip(per_problem, per_base):
        row["greedy_passed_base"], row["c_base"] = b["greedy_passed"], b["c"]
    strip = lambda d: {k: v for k, v in d.items() if k != "n_problems"}  # noqa: E731
    scores = dict(plus_scores, evaluator="evalplus", headline=plus_name,
                  benchmarks={base_name: strip(base_scores), plus_name: strip(plus_scores)}, notes=res["notes"])
    return results, per_problem, scores
