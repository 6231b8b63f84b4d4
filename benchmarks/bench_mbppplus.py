"""Throughput of gift.evalplus vs the reference evaluator (evalplus 0.3.1) on the same MBPP+ samples.

    python benchmarks/bench_mbppplus.py [--categories canonical,off_by_one,...] [--parallel 1,2]
        [--workers N] [--evalplus-python PY]

Both evaluators start from a cold cache, so the expected outputs (running the 378 canonical
solutions on every base and plus input) are inside both timings: gift.evalplus writes them to a
fresh temp file, evalplus gets a fresh ``XDG_CACHE_HOME``.  Prints samples/s of each and the
ratio, plus the machine load (the numbers depend on it).  The samples are those of
``scripts/evalplus_agreement.py`` (same categories; default: all).  EvalPlus's default
``--parallel`` is ``cpu_count // 2`` (1 on a 2-core machine); ``--parallel 1,2`` times both.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(_HERE)
sys.path.insert(0, ROOT)

import argparse  # noqa: E402
import collections  # noqa: E402
import importlib.util  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402


def _agreement():
    spec = importlib.util.spec_from_file_location(
        "gift_evalplus_agreement", os.path.join(ROOT, "scripts", "evalplus_agreement.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ag = _agreement()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=ag.DATA)
    ap.add_argument("--categories", default=",".join(ag.ALL_CATEGORIES))
    ap.add_argument("--model-samples", default=ag.MODEL_SAMPLES)
    ap.add_argument(
        "--parallel", default="", help="evalplus --parallel values, comma-separated (default: its own default)"
    )
    ap.add_argument("--workers", type=int, default=None, help="gift.execute workers (default: cpu_count)")
    ap.add_argument("--evalplus-python", default=None)
    ap.add_argument("--skip-evalplus", action="store_true")
    a = ap.parse_args(argv)

    from gift.datasets import load_split
    from gift.execute import sandbox_info

    problems = load_split("mbppplus", a.data, "test")
    samples = ag.build_corpus(problems, [c for c in a.categories.split(",") if c], a.model_samples)
    seen = {s["task_id"] for s in samples}
    samples += [
        {"task_id": p["task_id"], "solution": "", "category": "filler"} for p in problems if p["task_id"] not in seen
    ]
    n = len(samples)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    print(f"samples: {n} {dict(collections.Counter(s['category'] for s in samples))}")
    work = tempfile.mkdtemp(prefix="gift-bench-mbppplus-")
    try:
        info = sandbox_info()  # start a server outside the timing (the engine's servers are long-lived)
        print(
            f"engine: isolation={info.get('isolation', '?')} slots/server={info.get('slots')} "
            f"workers={a.workers or os.cpu_count()}"
        )
        _, t_g, gi = ag.run_gift(problems, samples, work, a.workers)
        print(
            f"gift.evalplus   : {t_g:7.1f}s  {n / t_g:7.1f} samples/s  (expected outputs {gi['expected_s']:.1f}s, "
            f"evaluation {gi['evaluate_s']:.1f}s)  MBPP {gi['scores']['base'].get('pass@1', 0):.3f} "
            f"MBPP+ {(gi['scores']['plus'] or {}).get('pass@1', 0):.3f}"
        )
        rows = []
        if not a.skip_evalplus:
            for par in [int(x) for x in a.parallel.split(",") if x] or [None]:
                d = os.path.join(work, f"ep{par}")
                os.makedirs(d)
                _, t_e = ag.run_evalplus(samples, a.data, d, ag.evalplus_python(a.evalplus_python), par)
                label = f"parallel={par or max(1, (os.cpu_count() or 2) // 2)}{'' if par else ' (default)'}"
                print(
                    f"evalplus {label:<20}: {t_e:7.1f}s  {n / t_e:7.1f} samples/s   "
                    f"ratio gift/evalplus {t_e / t_g:5.2f}x"
                )
                rows.append((label, t_e))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if rows:
            print(
                "\nsummary: samples/s  gift "
                + f"{n / t_g:.1f}"
                + "".join(f" | evalplus {lab} {n / t:.1f} ({t / t_g:.2f}x)" for lab, t in rows)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
