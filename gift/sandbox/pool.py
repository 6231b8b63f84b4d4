"""The fork servers: started on demand, reused across ``execute()`` calls, one variant of isolation
detected once (``launch``). A server is "light" (standard library pre-imported) or "heavy" (also
numpy/pandas, dearer to fork); rows are routed by the modules their code names."""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

from .child.preload import _OPTIONAL
from .launch import _server_env, _variants

_START_TIMEOUT_S = 120.0
FULL_ISOLATION = "net+pid+mount"  # the first launch variant; a server that gets less logs a warning
# Fork servers per CPU core (``workers``). Each server runs at most one CPU-bound candidate at a time
# and is idle while it forks, reaps and reports; a second server per core keeps the core busy
# meanwhile (+20 % candidates/s on short programs, benchmarks/bench_execute.py). Timeouts stay fair:
# time a candidate waits for a CPU extends its deadline (up to 4 x timeout_s + 1 s).
SERVERS_PER_CORE = 2

_HEAVY = ("numpy", "pandas")  # pre-imported by the fork servers only when a batch needs them
# stdlib modules a server pre-imports when the batch's code mentions them (a word match is
# enough: a module named but not imported costs a little memory, one imported but not
# pre-imported costs each candidate the import)
_OPTIONAL_RE = re.compile(r"\b({})\b".format("|".join(sorted(_OPTIONAL, key=len, reverse=True))))


def _row_needs(r: dict) -> set:
    """Modules a fork server should hold for this row: numpy/pandas where they are mentioned at
    all (pandas implies numpy), and the optional stdlib modules the code names."""
    tests = r.get("tests") or [] if r.get("format") != "evalplus" else []  # evalplus tests are data
    text = (r.get("code") or "") + "".join(map(str, tests)) + (r.get("setup") or "")
    need = {m for m in _HEAVY if m in text}
    if "pandas" in need:
        need.add("numpy")
    need.update(_OPTIONAL_RE.findall(text))
    return need


def _needed_preimports(rows: list[dict]) -> frozenset:
    return frozenset().union(*map(_row_needs, rows))


def _server_counts(workers: int, n_jobs: int, n_heavy_rows: int) -> tuple[int, int]:
    """-> (fork servers, of which heavy) for a batch: SERVERS_PER_CORE per core, heavy ones in
    proportion to the heavy rows (at least one when there are any)."""
    n = min(workers * SERVERS_PER_CORE, n_jobs)
    return n, (max(1, min(n, round(n * n_heavy_rows / n_jobs))) if n_heavy_rows else 0)


class _ServerDied(RuntimeError):
    pass


class _Server:
    def __init__(self, argv: list[str], preimport: frozenset = frozenset()):
        self.errlog = tempfile.TemporaryFile()
        self.preimport = preimport
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errlog,
            env=_server_env(" ".join(sorted(preimport))),
            cwd="/",
            bufsize=0,
            close_fds=True,
            start_new_session=True,
        )
        self.info = self._read_line(_START_TIMEOUT_S)
        if not self.info or not self.info.get("ready"):
            try:  # the reason is on its stderr: read it before close() closes the log
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
            self.errlog.seek(0)
            err = self.errlog.read()[-500:].decode("utf-8", "replace")
            self.close()
            raise _ServerDied("sandbox server failed to start: " + err)
        # what is really loaded (GIFT_SANDBOX_PREIMPORT may override the request)
        self.preimport = frozenset(self.info.get("preimported") or ()) | {m for m in _HEAVY if self.info.get(m)}
        self.heavy = any(m in self.preimport for m in _HEAVY)
        self.slots = int(self.info.get("slots") or 1)
        self.inbuf = bytearray()

    def _read_line(self, timeout: float) -> dict | None:
        timer = threading.Timer(timeout, self._kill)
        timer.daemon = True
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            return None
        return json.loads(line)

    def death_cause(self) -> str:
        """How the server process ended, with the tail of its stderr (for diagnostics)."""
        rc = self.proc.poll()
        if rc is None:
            try:
                rc = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                return "still running"
        how = f"killed by {signal.Signals(-rc).name}" if rc < 0 and -rc in signal.valid_signals() else f"exit {rc}"
        try:
            self.errlog.seek(0, os.SEEK_END)
            size = self.errlog.tell()
            self.errlog.seek(max(0, size - 300))
            tail = self.errlog.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            tail = []
        return how + (f": {tail[-1][:200]}" if tail else "")

    def _kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            self.proc.wait()
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self.errlog.close()


class _Pool:
    """Fork servers, reused across execute() calls.  A server either has only the
    stdlib pre-imported ("light") or also numpy+pandas ("heavy"; forking and
    tearing down its bigger address space costs ~2x).  Rows that mention
    numpy/pandas go to heavy servers, the rest preferably to light ones."""

    def __init__(self):
        self.lock = threading.RLock()
        self.servers: list[_Server] = []
        self.variant: int | None = None
        self.warned = False
        self.warn_lock = threading.Lock()

    def _start(self, preimport: frozenset = frozenset()) -> _Server:
        """A new server of the most isolated variant that starts here (servers start in parallel: before
        the first one is up, each tries the variants in order on its own)."""
        vs = _variants()
        start = self.variant if self.variant is not None else 0
        last = None
        for i in range(start, len(vs)):
            try:
                s = _Server(vs[i][1], preimport)
            except (_ServerDied, OSError, ValueError) as e:
                last = e
                continue
            s.info["isolation"] = vs[i][0]
            if self.variant is None or i != self.variant:
                self.variant = i
            self._warn_if_weaker(vs[i][0], last)
            return s
        raise RuntimeError(f"cannot start the sandbox server: {last}")

    def _warn_if_weaker(self, isolation: str, why: Exception | None) -> None:
        """Say once per process, in the log, that the candidates run with less isolation than
        ``net+pid+mount`` (e.g. in a container without CAP_SYS_ADMIN), unless GIFT_SANDBOX_NS asked for it."""
        if isolation == FULL_ISOLATION or os.environ.get("GIFT_SANDBOX_NS") == isolation:
            return
        with self.warn_lock:  # not self.lock: ensure() holds it while servers start in other threads
            if self.warned:
                return
            self.warned = True
        reason = " ".join(str(why).split())[-200:] if why else "unshare is not installed"
        logging.getLogger("gift.sandbox").warning(
            "sandbox isolation is %r, not %r (%s): candidates get the weaker protections that "
            "docs/execution.md lists for it; in a container, run it with --cap-add SYS_ADMIN",
            isolation,
            FULL_ISOLATION,
            reason,
        )

    def ensure(self, n: int, preimport: frozenset = frozenset(), n_heavy: int | None = None) -> list[_Server]:
        """-> n running servers, of which ``n_heavy`` (default: 1 if ``preimport`` names
        numpy/pandas, else 0) hold all of ``preimport``, the others all of it but
        numpy/pandas; a running server that holds what is needed is kept, extra
        servers are closed."""
        heavy_mods = preimport & frozenset(_HEAVY)
        light_need = preimport - heavy_mods
        if n_heavy is None:
            n_heavy = 1 if heavy_mods else 0
        n_heavy = min(n, n_heavy) if heavy_mods else 0
        with self.lock:
            heavy = [s for s in self.servers if heavy_mods and preimport <= s.preimport]
            use = heavy[:n_heavy]
            want = [preimport] * (n_heavy - len(use))
            rest = sorted(
                (s for s in self.servers if s not in use and light_need <= s.preimport), key=lambda s: s.heavy
            )  # light ones first
            use += rest[: n - len(use) - len(want)]
            want += [light_need] * (n - len(use) - len(want))
            if want:
                with ThreadPoolExecutor(len(want)) as ex:
                    use += list(ex.map(self._start, want))
            for s in self.servers:
                if s not in use:
                    try:
                        s.close()
                    except Exception:
                        pass
            self.servers = list(use)
            return list(use)

    def replace(self, dead: _Server) -> _Server:
        try:
            dead._kill()
            dead.close()
        except Exception:
            pass
        new = self._start(dead.preimport)
        with self.lock:
            self.servers = [s for s in self.servers if s is not dead] + [new]
        return new

    def shutdown(self):
        with self.lock:
            for s in self.servers:
                try:
                    s.close()
                except Exception:
                    pass
            self.servers = []


_POOL = _Pool()
atexit.register(_POOL.shutdown)
_RUN_LOCK = threading.Lock()  # one execute() at a time drives the servers


def shutdown() -> None:
    """Stop the fork servers (they are restarted on the next call)."""
    _POOL.shutdown()


def sandbox_info() -> dict:
    """Isolation actually in effect (starts one server if none is running)."""
    with _RUN_LOCK:
        if not _POOL.servers:
            _POOL.ensure(1)
        return dict(_POOL.servers[0].info)


def _is_heavy(row: dict) -> bool:
    return not _row_needs(row).isdisjoint(_HEAVY)
