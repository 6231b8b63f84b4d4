"""The Gibbs chain of GiFT and the RFT sample pool.

Per problem and iteration t (files under ``results/<exp>/<pool>/iter<t>/``):

``descriptions.jsonl``  the description that drives step t (t = 0: the seed description)
``codes.jsonl``         n codes sampled from p(code | description)
``tests.jsonl``         the execution engine's verdict for each code
``kept.jsonl``          one passing code per problem, drawn at random (or none), and the chain's
                        carried state (the last kept code)

and for the Gibbs pool only, the next description ~ p(description | kept code), written as iteration
t+1's ``descriptions.jsonl``. If no code passed at step t, the chain summarises its last kept code, or the
reference solution when none passed yet (``gibbs.on_no_pass: last_kept``, what the authors evidently
intended); ``reference`` always summarises the reference then, which is what their released code does
(it reads the wrong iteration's file, see docs/fidelity.md). The RFT pool runs the same steps with the
seed description at every iteration: the same sample budget, the same keep rule, only the
description differs.
"""

from __future__ import annotations

from .seeding import derive, rng


def seed_descriptions(problems: list[dict]) -> list[dict]:
    return [
        {"task_id": p["task_id"], "iteration": 0, "description": p["description"], "source": "seed"} for p in problems
    ]


def _stops(layout, problems: list[dict], stage: str):
    """Stop strings every problem of one generation call shares (the exact cut is the layout's ``extract``)."""
    lists = [layout.stops(p, stage) for p in problems] or [layout.stops(None, stage)]
    if any(s is None for s in lists):
        return None
    common = [s for s in lists[0] if all(s in other for other in lists[1:])]
    return common or None


def sample_codes(
    backend,
    problems: list[dict],
    descriptions: list[dict],
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    layout,
    seed: int,
    iteration: int,
    pool: str,
) -> list[dict]:
    """n codes per problem from p(code | description)."""
    by_id = {d["task_id"]: d["description"] for d in descriptions}
    missing = [p["task_id"] for p in problems if p["task_id"] not in by_id]
    if missing:
        raise ValueError(f"descriptions of iteration {iteration} lack problems {missing[:5]}")
    prompts = [layout.code_prompt(backend.tok, by_id[p["task_id"]], p) for p in problems]
    outs = backend.generate(
        prompts,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=derive(seed, pool, iteration, "codes"),
        stop=_stops(layout, problems, "chain"),
        fence_stop=layout.fence_stop,
        desc=f"{pool} iter {iteration}: codes",
    )
    rows = []
    for p, prompt, samples in zip(problems, prompts, outs, strict=True):
        for j, raw in enumerate(samples):
            rows.append(
                {
                    "task_id": p["task_id"],
                    "iteration": iteration,
                    "sample": j,
                    "description": by_id[p["task_id"]],
                    "raw": raw,
                    "code": layout.extract(raw, p, prompt, "chain"),
                }
            )
    return rows


# The authors' CodeInsight harness runs every test file after this import block, with numpy, pandas and
# sklearn also bound to their usual aliases (codeinsight.harness: authors). sklearn and bs4 are imported
# if they can be: the sandbox blocks ctypes, which sklearn needs, and bs4 is not installed here (no
# CodeInsight problem shipped here uses either; one that does fails under both harnesses).
CODEINSIGHT_IMPORTS = (
    "import numpy as np\nimport pandas as pd\n"
    "import numpy\nimport math\nimport pandas\nimport string\nimport datetime\nimport json\nimport itertools\n"
    "import random\nimport functools\nimport collections\nimport re\n"
    "try:\n    import sklearn\nexcept Exception:\n    pass\n"
    "try:\n    import bs4\nexcept Exception:\n    pass\n"
)
HARNESSES = ("strict", "authors")


def exec_row(problem: dict, code: str, row_id: str, timeout_s: float, harness: str = "strict") -> dict:
    """An execution-engine input row for ``code`` against ``problem``'s tests.

    ``harness`` (``codeinsight.harness``) matters for CodeInsight only: ``strict`` runs the program and its
    tests alone, bare comparison lines made assertions; ``authors`` puts the authors' import block first
    and runs the test files as released (a bare comparison is evaluated and not checked)."""
    if harness not in HARNESSES:
        raise ValueError(f"codeinsight.harness: {harness!r} ({' | '.join(HARNESSES)})")
    tests = problem["tests"]
    if harness == "authors" and problem.get("raw_tests") is not None:
        code, tests = CODEINSIGHT_IMPORTS + "\n" + code, problem["raw_tests"]
    # APPS programs rely on the imports APPS's own harness puts before every program
    code = problem["prelude"] + "\n" + code if problem.get("prelude") else code
    row = {"id": row_id, "code": code, "tests": tests, "format": problem["format"], "timeout_s": timeout_s}
    if problem.get("setup"):
        row["setup"] = problem["setup"]
    if problem.get("entry_point"):
        row["entry_point"] = problem["entry_point"]
    if problem.get("fn_name"):
        row["fn_name"] = problem["fn_name"]
    return row


def test_codes(
    problems: list[dict], codes: list[dict], *, timeout_s: float, workers: int | None, harness: str = "strict"
) -> list[dict]:
    from .sandbox import execute

    by_id = {p["task_id"]: p for p in problems}
    rows = [
        exec_row(by_id[c["task_id"]], c["code"], f"{c['task_id']}#{c['sample']}", timeout_s, harness) for c in codes
    ]
    results = execute(rows, workers=workers, progress=True)
    out = []
    for c, r in zip(codes, results, strict=True):
        out.append(
            {
                "task_id": c["task_id"],
                "iteration": c["iteration"],
                "sample": c["sample"],
                "passed": bool(r["passed"]),
                "status": r["status"],
                "tests_passed": r["tests_passed"],
                "tests_total": r["tests_total"],
                "duration_s": r["duration_s"],
                "detail": r.get("detail", ""),
            }
        )
    return out


def keep(
    problems: list[dict],
    codes: list[dict],
    results: list[dict],
    previous: list[dict] | None,
    *,
    seed: int,
    iteration: int,
    pool: str,
    keep_all: bool = False,
) -> list[dict]:
    """One passing code per problem drawn at random (all passing codes with ``keep_all``), plus the carried
    last kept code of the chain."""
    prev = {r["task_id"]: r for r in previous or []}
    passing: dict[str, list[dict]] = {}
    for c, r in zip(codes, results, strict=True):
        if (c["task_id"], c["sample"]) != (r["task_id"], r["sample"]):
            raise ValueError(f"codes and test results out of step at {c['task_id']}#{c['sample']}")
        if r["passed"]:
            passing.setdefault(c["task_id"], []).append(c)
    rows = []
    for p in problems:
        tid = p["task_id"]
        cands = passing.get(tid, [])
        if keep_all:
            kept = cands
        else:
            kept = [rng(seed, pool, iteration, tid, "keep").choice(cands)] if cands else []
        last = kept[-1]["code"] if kept else (prev[tid]["last_code"] if tid in prev else None)
        rows.append(
            {
                "task_id": tid,
                "iteration": iteration,
                "n_passed": len(cands),
                "kept": [{"sample": k["sample"], "code": k["code"], "description": k["description"]} for k in kept],
                "last_code": last,
            }
        )
    return rows


ON_NO_PASS = ("last_kept", "reference")


def describe(
    backend,
    problems: list[dict],
    kept: list[dict],
    examples: list[tuple[str, str, str]],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    layout,
    seed: int,
    iteration: int,
    on_no_pass: str = "last_kept",
) -> list[dict]:
    """Descriptions for iteration t+1 ~ p(description | code_t), one in-context example each.

    ``examples`` are (task_id, code, description) triples (``describe_examples``); a problem never gets its
    own as the example. ``on_no_pass``: what a problem whose step kept no code summarises (``last_kept``:
    its last kept code, else the reference; ``reference``: the reference)."""
    if on_no_pass not in ON_NO_PASS:
        raise ValueError(f"gibbs.on_no_pass: {on_no_pass!r} ({' | '.join(ON_NO_PASS)})")
    if not examples:
        raise ValueError("describe: no in-context example")
    by_id = {k["task_id"]: k for k in kept}
    prompts, sources, codes = [], [], []
    for p in problems:
        k = by_id[p["task_id"]]
        if k["kept"]:
            code, source = k["kept"][-1]["code"], "kept"
        elif k["last_code"] and on_no_pass == "last_kept":
            code, source = k["last_code"], "last_kept"
        else:
            code, source = p["reference"], "reference"
        pool = [e for e in examples if e[0] != p["task_id"]] or examples
        ex = rng(seed, "example", iteration, p["task_id"]).choice(pool)
        prompts.append(layout.describe_prompt(backend.tok, code, (ex[1], ex[2])))
        sources.append(source)
        codes.append(code)
    outs = backend.generate(
        prompts,
        n=1,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=derive(seed, "gibbs", iteration, "descriptions"),
        stop=layout.description_stops,
        desc=f"gibbs iter {iteration}: descriptions",
    )
    rows = []
    for p, out, source, code in zip(problems, outs, sources, codes, strict=True):
        desc = layout.clean_description(out[0])
        if not desc.strip():  # an empty summary would leave the next step without a task: keep the seed wording
            desc, source = p["description"], source + "+seed_fallback"
        rows.append(
            {
                "task_id": p["task_id"],
                "iteration": iteration + 1,
                "description": desc,
                "source": source,
                "from_code": code,
                "raw": out[0],
            }
        )
    return rows


def rewrite(
    backend,
    problems: list[dict],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    layout,
    seed: int,
    iteration: int,
) -> list[dict]:
    """RFT with rewritten descriptions (RFT+RD): each step paraphrases the *seed* description afresh, and
    that step's codes are sampled from the paraphrase (the chain never feeds back)."""
    prompts = [layout.rewrite_prompt(backend.tok, p["description"]) for p in problems]
    outs = backend.generate(
        prompts,
        n=1,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=derive(seed, "rft_rd", iteration, "rewrite"),
        stop=layout.description_stops,
        desc=f"rft_rd iter {iteration}: rewrites",
    )
    rows = []
    for p, out in zip(problems, outs, strict=True):
        desc, source = layout.clean_description(out[0]).strip(), "rewrite"
        if not desc:
            desc, source = p["description"], "rewrite+seed_fallback"
        rows.append(
            {"task_id": p["task_id"], "iteration": iteration, "description": desc, "source": source, "raw": out[0]}
        )
    return rows


def collect_pool(kept_per_iteration: list[list[dict]]) -> list[dict]:
    """Every kept code of every iteration: the pool that approximates p(code)."""
    pool = []
    for rows in kept_per_iteration:
        for r in rows:
            for k in r["kept"]:
                pool.append(
                    {
                        "task_id": r["task_id"],
                        "iteration": r["iteration"],
                        "sample": k["sample"],
                        "code": k["code"],
                        "description": k["description"],
                    }
                )
    return pool
