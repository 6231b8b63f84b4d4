"""``execute``: rows become requests, a single-threaded dispatcher hands them to the fork servers and
turns the records that come back into verdicts, in the order of the rows."""

from __future__ import annotations

import argparse
import collections
import json
import os
import selectors
import sys
import time
from collections.abc import Iterable

from ..io import read_jsonl, write_jsonl
from .plus import _PLUS_DEC
from .pool import _HEAVY, _POOL, _RUN_LOCK, SERVERS_PER_CORE, _row_needs, _Server, _server_counts
from .records import _clip
from .verdict import _prepare, _verdict


def _bad_row(row: dict, e: Exception) -> dict:
    return {
        "id": row.get("id"),
        "passed": False,
        "status": "error",
        "tests_passed": 0,
        "tests_total": len(row.get("tests") or []),
        "duration_s": 0.0,
        "detail": _clip(f"bad row: {e}"),
    }


class _Dispatch:
    """Keeps up to ``slots + 2`` requests in flight per server (the server queues them and overlaps
    blocked candidates), reads results as they come and hands them to ``finish(i, raw)``.

    Rows wait in ``heavy_q`` (numpy/pandas) and ``light_q``; a row lost with its server is requeued
    (it may have been a bystander), a row lost twice runs alone (``solo_q``), a row lost again is what
    takes servers down and gets a ``killed`` verdict. An idle server takes over rows that a busy one has
    queued but not started (``steal``)."""

    def __init__(
        self,
        servers: list[_Server],
        jobs: dict,
        timeouts: dict,
        heavy_q: collections.deque,
        light_q: collections.deque,
        finish,
        heavy_rows: set | None = None,
        pool=_POOL,
    ):
        self.jobs, self.timeouts, self.finish, self.pool = jobs, timeouts, finish, pool
        self.heavy_q, self.light_q, self.heavy_rows = heavy_q, light_q, heavy_rows
        self.sel = selectors.DefaultSelector()
        self.state: dict[_Server, dict] = {}
        self.retries: dict[int, int] = {}
        self.solo_q: collections.deque = collections.deque()
        self.asked: set = set()  # rows a server was asked to give back (steal)
        for s in servers:
            self.register(s)

    def register(self, s: _Server) -> None:
        os.set_blocking(s.proc.stdin.fileno(), False)
        os.set_blocking(s.proc.stdout.fileno(), False)
        self.state[s] = {"inflight": {}, "out": bytearray(), "in": bytearray(), "last": time.monotonic(), "wreg": False}
        self.sel.register(s.proc.stdout.fileno(), selectors.EVENT_READ, s)

    def next_job(self, s: _Server):
        any_heavy = any(x.heavy for x in self.state)
        if (s.heavy or not any_heavy) and self.heavy_q:
            return self.heavy_q.popleft()
        if self.light_q:
            return self.light_q.popleft()
        if self.heavy_q and not any_heavy:
            return self.heavy_q.popleft()
        return None

    def fill(self, s: _Server) -> None:
        st = self.state[s]
        if self.solo_q:  # rows that were lost twice run alone, on a server with nothing else in flight
            if not st["inflight"]:
                i = self.solo_q.popleft()
                st["inflight"][i] = time.monotonic()
                st["solo"] = True
                st["out"] += self.jobs[i]
            self.flush(s)
            return
        if st.get("solo") and st["inflight"]:
            self.flush(s)
            return
        st["solo"] = False
        while len(st["inflight"]) < s.slots + 2:
            i = self.next_job(s)
            if i is None:
                break
            st["inflight"][i] = time.monotonic()
            st["out"] += self.jobs[i]
        self.flush(s)

    def flush(self, s: _Server) -> None:
        st = self.state[s]
        fd = s.proc.stdin.fileno()
        while st["out"]:
            try:
                n = os.write(fd, st["out"])
            except BlockingIOError:
                break
            except OSError:
                st["out"].clear()  # the server died; noticed on its stdout
                break
            del st["out"][:n]
        if st["out"] and not st["wreg"]:
            self.sel.register(fd, selectors.EVENT_WRITE, ("w", s))
            st["wreg"] = True
        elif not st["out"] and st["wreg"]:
            self.sel.unregister(fd)
            st["wreg"] = False

    def steal(self) -> None:
        """Nothing left to hand out and a server is idle: ask the busiest server to give back the
        requests it has queued but not started (e.g. behind a long-running candidate); they come back
        as ``cancelled`` and go to the idle server. Each row is asked for at most once."""
        if self.heavy_q or self.light_q or self.solo_q:
            return
        idle = [s for s, st in self.state.items() if not st["inflight"]]
        if not idle:
            return
        for s, st in self.state.items():
            if len(st["inflight"]) < 2 or st.get("solo"):
                continue
            if not any(x.heavy or not s.heavy for x in idle):  # an idle server must be able to take the rows
                continue
            for i in sorted(st["inflight"], key=st["inflight"].get)[1:]:  # the oldest is running
                if i not in self.asked:
                    self.asked.add(i)
                    st["out"] += json.dumps({"cancel": i}).encode() + b"\n"
            self.flush(s)

    def died(self, s: _Server, why: str) -> None:
        st = self.state.pop(s)
        for fd in (s.proc.stdout.fileno(), s.proc.stdin.fileno()):
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        why = f"{why}; {s.death_cause()}"
        for i in st["inflight"]:
            self.retries[i] = self.retries.get(i, 0) + 1
            if self.retries[i] >= 3 or (st.get("solo") and self.retries[i] >= 2):
                # lost even when it ran alone: this candidate is what takes the server down
                self.finish(i, {"server_error": f"sandbox server died ({why}); restarted", "duration": 0.0})
            elif self.retries[i] == 2:  # lost twice: run it alone, so it cannot be a bystander again
                self.solo_q.append(i)
            else:  # it may have been an innocent bystander of the candidate that killed it
                (self.heavy_q if s.heavy else self.light_q).appendleft(i)
        self.register(self.pool.replace(s))
        for x in list(self.state):
            self.fill(x)

    def check_hung(self) -> None:
        now = time.monotonic()
        for s, st in list(self.state.items()):  # a server silent for far too long is hung
            if st["inflight"] and now - st["last"] > (3 * sum(self.timeouts[i] for i in st["inflight"]) + 60.0):
                s._kill()
                s.proc.wait()
                self.died(s, "no answer")

    def receive(self, s: _Server, fd: int) -> None:
        """Results from one server's stdout: each finished row to ``finish``, each given-back row requeued."""
        st = self.state[s]
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.died(s, "sandbox server died")
            return
        st["last"] = time.monotonic()
        buf = st["in"]
        buf += data
        while True:
            j = buf.find(b"\n")
            if j < 0:
                break
            raw = json.loads(bytes(buf[:j]))
            del buf[: j + 1]
            i = raw.get("i")
            if i in st["inflight"]:
                del st["inflight"][i]
                if raw.get("cancelled"):  # given back unstarted: hand it to another server
                    heavy = self.heavy_rows is not None and i in self.heavy_rows
                    (self.heavy_q if heavy else self.light_q).append(i)
                    for x in sorted(self.state, key=lambda x: len(self.state[x]["inflight"])):  # the idle ones first
                        self.fill(x)
                else:
                    self.finish(i, raw)
        self.fill(s)
        self.steal()

    def run(self) -> None:
        for s in list(self.state):
            self.fill(s)
        self.steal()
        while self.solo_q or any(st["inflight"] for st in self.state.values()):
            self.check_hung()
            for key, _ in self.sel.select(1.0):
                s = key.data if isinstance(key.data, _Server) else key.data[1]
                if s not in self.state:
                    continue
                if isinstance(key.data, _Server):
                    self.receive(s, key.fd)
                else:
                    self.flush(s)
        self.sel.close()
        for s in self.state:
            os.set_blocking(s.proc.stdin.fileno(), True)
            os.set_blocking(s.proc.stdout.fileno(), True)


def execute(rows: Iterable[dict], workers: int | None = None, progress: bool = False) -> list[dict]:
    """Run every row in the sandbox; results come back in the order of ``rows``. ``workers``: CPU
    cores to keep busy (default ``os.cpu_count()``), ``SERVERS_PER_CORE`` fork servers each."""
    rows = list(rows)
    if not rows:
        return []
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(rows)))
    results: list[dict | None] = [None] * len(rows)
    meta: dict[int, tuple] = {}
    jobs: dict[int, bytes] = {}
    timeouts: dict[int, float] = {}
    heavy_q: collections.deque = collections.deque()
    light_q: collections.deque = collections.deque()
    memo: dict = {}
    need: set = set()
    for i, row in enumerate(rows):
        try:
            req, expected, total = _prepare(row, memo)
        except ValueError as e:
            results[i] = _bad_row(row, e)
            continue
        req["i"] = i
        meta[i] = (row.get("format", "assert"), expected, total)
        jobs[i] = json.dumps(req).encode() + b"\n"
        timeouts[i] = float(req["timeout"])
        row_need = _row_needs(row)
        need |= row_need
        (light_q if row_need.isdisjoint(_HEAVY) else heavy_q).append(i)
    done = [len(rows) - len(jobs)]
    t0 = time.monotonic()

    def finish(i: int, raw: dict):
        fmt, expected, total = meta[i]
        results[i] = _verdict(rows[i], fmt, expected, total, raw)
        if progress:
            done[0] += 1
            if done[0] % 50 == 0 or done[0] == len(rows):
                rate = done[0] / max(1e-9, time.monotonic() - t0)
                print(f"[gift.sandbox] {done[0]}/{len(rows)} ({rate:.1f}/s)", file=sys.stderr)

    if jobs:
        with _RUN_LOCK:
            n, n_heavy = _server_counts(workers, len(jobs), len(heavy_q))
            servers = _POOL.ensure(n, frozenset(need), n_heavy)
            ok = False
            try:
                _Dispatch(servers, jobs, timeouts, heavy_q, light_q, finish, heavy_rows=set(heavy_q)).run()
                ok = True
            finally:
                if not ok:  # servers may still hold requests of this call: drop them
                    _POOL.shutdown()
    _PLUS_DEC.clear()
    return results  # type: ignore[return-value]


def execute_one(row: dict) -> dict:
    return execute([row], workers=1)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m gift.sandbox", description="Run model-written programs against tests in the sandbox."
    )
    ap.add_argument("inp", help="input JSONL (rows with id, code, tests, format, ...)")
    ap.add_argument("out", help="output JSONL (written atomically)")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"CPU cores to use (default: all; {SERVERS_PER_CORE} fork servers per core)",
    )
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args(argv)
    rows = read_jsonl(a.inp)
    res = execute(rows, workers=a.workers, progress=a.progress)
    write_jsonl(a.out, res)
    n = sum(r["passed"] for r in res)
    print(f"{n}/{len(res)} passed -> {a.out}", file=sys.stderr)
    return 0
