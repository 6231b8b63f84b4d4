"""Sandboxed execution of model-written programs against tests.

Public API (stable)::

    from gift.execute import execute, execute_one
    results = execute(rows, workers=None, progress=False)
    res = execute_one(row)

    python -m gift.execute IN.jsonl OUT.jsonl [--workers N]

Input row: ``id``, ``code``, ``tests`` (list[str]), ``format`` (``assert`` |
``humaneval`` | ``apps_call`` | ``apps_stdio`` | ``evalplus``), optional ``entry_point``,
``fn_name``, ``setup``, ``timeout_s`` (default 10) and ``mem_mb`` (default 4096).
``evalplus`` rows (EvalPlus-style differential tests, see docs/mbppplus.md): ``entry_point``,
``tests`` = JSON ``{"input": [args], "expected": v, "atol": a, "time_limit": s, "group": g}``
in the strict value encoding of ``gift/_sandbox_child.py``, optional ``dataset`` (``mbpp`` |
``humaneval``: EvalPlus's special oracles), ``stop_first`` (default true) and
``return_outputs``; the result adds ``groups`` (and ``outputs``/``times``).

Output row: ``id``, ``passed``, ``status`` (``passed`` | ``failed`` |
``timeout`` | ``error`` | ``memory`` | ``killed``), ``tests_passed``,
``tests_total``, ``duration_s``, ``detail`` (<= 300 chars).

Design (see docs/execution.md): each worker owns a long-lived *fork server*
(``gift/_sandbox_child.py``, a fresh ``python -I`` process started through
``unshare --net --pid --mount`` when the machine allows it, never a fork of the
caller) that has pre-imported the harness, the common stdlib and
numpy/pandas.  Per candidate it forks a child that isolates itself (new
session, fresh temp cwd, scrubbed env, rlimits, unprivileged uid, audit hook)
and reports MAC'd per-test records; the verdict is computed here from those
records only.  Exit codes and stdout of the candidate prove nothing.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import json
import math
import os
import re
import shlex
import shutil
import signal
import site
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from . import _sandbox_child
from .io import read_jsonl, write_jsonl

__all__ = ["execute", "execute_one", "sandbox_info", "shutdown", "STATUSES", "FORMATS"]

STATUSES = ("passed", "failed", "timeout", "error", "memory", "killed")
FORMATS = ("assert", "humaneval", "apps_call", "apps_stdio", "evalplus")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEM_MB = 4096
_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")
_DETAIL_MAX = 300
_START_TIMEOUT_S = 120.0

# --------------------------------------------------------------------------- launch
_MNT_SCRIPT = r"""
set -e
[ "$(readlink /proc/self/ns/mnt)" != "$1" ] || { echo "gift sandbox: not in a private mount namespace" >&2; exit 97; }
shift
%s
mount -t tmpfs -o mode=1777,size=512m gift-tmp /tmp
for d in /dev/shm /var/tmp; do
  if [ -d "$d" ]; then mount -t tmpfs -o mode=1777,size=64m gift-tmp "$d" || true; fi
done
%s
%s
export GIFT_SANDBOX_PRIVATE_TMP=1
exec "$@"
"""


_COVERED = ("/tmp", "/var/tmp", "/dev/shm")  # replaced by private tmpfs in the sandbox


def _needed_paths() -> set[str]:
    """What the fork server must be able to read: the interpreter, its stdlib and site-packages (a
    virtual environment), and the repository (gift/_sandbox_child.py)."""
    need = {os.path.dirname(os.__file__), sys.prefix, sys.base_prefix, sys.exec_prefix,
            os.path.dirname(os.path.dirname(_CHILD)), os.path.dirname(sys.executable)}
    try:
        need.update(site.getsitepackages())
    except AttributeError:
        pass
    return {os.path.realpath(p) for p in need} | need


def _keep_lines() -> tuple[str, str]:
    """Shell lines that keep a checkout or virtual environment living under /tmp, /var/tmp or
    /dev/shm visible after those are covered by private tmpfs: the covered directory is opened as
    a file descriptor first, and the needed top-level entry is bind-mounted back from it (``mount
    -c``: the /proc/self/fd path must not be canonicalised to the new, empty path). Without this a
    clone under /tmp could not start the sandbox with its mount namespace at all."""
    keep: dict[str, set[str]] = {}
    for p in _needed_paths():
        for d in _COVERED:
            if p.startswith(d + "/"):
                keep.setdefault(d, set()).add(p[len(d) + 1:].split("/")[0])
    pre, post = [], []
    q = shlex.quote
    for n, d in enumerate(sorted(keep)):
        fd = 3 + n
        pre.append(f"exec {fd}<{q(d)}")
        for k in sorted(keep[d]):
            post.append(f"mkdir -p {q(d + '/' + k)} && mount -c --bind /proc/self/fd/{fd}/{q(k)} {q(d + '/' + k)}")
        post.append(f"exec {fd}<&-")
    return "\n".join(pre), "\n".join(post)


def _overmount_lines() -> str:
    """Shell lines (run only inside the private mount namespace) that make the
    interpreter readable for an unprivileged uid when one of its ancestors is
    not world-traversable (e.g. a pyenv under /root, mode 0700): the ancestor is
    covered by a tmpfs into which only the needed child is bind-mounted back."""
    need = _needed_paths()
    plan: dict[str, set[str]] = {}
    for p in need:
        p = os.path.realpath(p)
        parts = [c for c in p.split("/") if c]
        cur = "/"
        for comp in parts:
            try:
                mode = os.stat(cur).st_mode
            except OSError:
                break
            if not mode & 0o001 and cur not in ("/", "/tmp"):
                plan.setdefault(cur, set()).add(comp)
                break
            cur = os.path.join(cur, comp)
    lines = []
    for n, (anc, kids) in enumerate(sorted(plan.items())):
        tmpd = f"/tmp/.gift_ov{n}"
        q = shlex.quote
        lines.append(f"mkdir -p {tmpd} && mount --bind {q(anc)} {tmpd}")
        lines.append(f"mount -t tmpfs -o mode=755,size=1m gift-ov {q(anc)}")
        for k in sorted(kids):
            lines.append(f"mkdir -p {q(anc + '/' + k)} && mount --bind {q(tmpd + '/' + k)} {q(anc + '/' + k)}")
        lines.append(f"umount {tmpd} && rmdir {tmpd}")
    return "\n".join(lines)


def _variants() -> list[tuple[str, list[str]]]:
    py = [sys.executable, "-I", _CHILD]
    out = []
    unshare = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if unshare:
        try:
            mnt = os.readlink("/proc/self/ns/mnt")
        except OSError:
            mnt = None
        if mnt:
            pre, post = _keep_lines()
            script = _MNT_SCRIPT % (pre, post, _overmount_lines())
            out.append(("net+pid+mount", [unshare, "--net", "--pid", "--fork", "--kill-child",
                                          "--mount", "--mount-proc", "/bin/sh", "-c", script,
                                          "gift-sandbox", mnt] + py))
        out.append(("net", [unshare, "--net"] + py))
    out.append(("none", py))
    want = os.environ.get("GIFT_SANDBOX_NS")
    if want:
        out = [v for v in out if v[0] == want] or out
    return out


def _server_env(preimport: str | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
           "LANG": "C.UTF-8", "HOME": "/nonexistent", "PYTHONHASHSEED": "0",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for k in ("GIFT_SANDBOX_PREIMPORT", "GIFT_SANDBOX_UID", "GIFT_SANDBOX_SLOTS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if preimport is not None and "GIFT_SANDBOX_PREIMPORT" not in os.environ:
        env["GIFT_SANDBOX_PREIMPORT"] = preimport
    return env


_HEAVY = ("numpy", "pandas")  # pre-imported by the fork servers only when a batch needs them
# stdlib modules a server pre-imports when the batch's code mentions them (a word match is
# enough: a module named but not imported costs a little memory, one imported but not
# pre-imported costs each candidate the import)
_OPTIONAL_RE = re.compile(r"\b(%s)\b" % "|".join(sorted(_sandbox_child._OPTIONAL, key=len, reverse=True)))


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
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errlog, env=_server_env(" ".join(sorted(preimport))),
                                     cwd="/", bufsize=0,
                                     close_fds=True, start_new_session=True)
        self.info = self._read_line(_START_TIMEOUT_S)
        if not self.info or not self.info.get("ready"):
            self.close()
            self.errlog.seek(0)
            raise _ServerDied("sandbox server failed to start: "
                              + self.errlog.read()[-500:].decode("utf-8", "replace"))
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

    def _start(self, preimport: frozenset = frozenset()) -> _Server:
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
            return s
        raise RuntimeError(f"cannot start the sandbox server: {last}")

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
            if self.variant is None and not self.servers:  # detect the isolation level once
                self.servers.append(self._start(preimport if n_heavy else light_need))
            heavy = [s for s in self.servers if heavy_mods and preimport <= s.preimport]
            use = heavy[:n_heavy]
            want = [preimport] * (n_heavy - len(use))
            rest = sorted((s for s in self.servers if s not in use and light_need <= s.preimport),
                          key=lambda s: s.heavy)  # light ones first
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


# ----------------------------------------------------------------------- compare
_RTOL, _ATOL = 1e-5, 1e-8


def _decode(j: Any) -> Any:
    tag = j[0]
    if tag == "n":
        return None
    if tag == "b":
        return bool(j[1])
    if tag == "i":
        return int(j[1])
    if tag == "f":
        return float(j[1])
    if tag == "s":
        return bytes.fromhex(j[1]).decode("utf-8", "surrogatepass")
    if tag == "l" or tag == "t":
        return [_decode(e) for e in j[1]]  # tuples compare equal to lists (APPS rule)
    if tag == "S":
        return frozenset(_hashable(_decode(e)) for e in j[1])
    if tag == "d":
        return {_hashable(_decode(k)): _decode(v) for k, v in j[1]}
    raise ValueError(f"bad tag {tag!r}")


def _hashable(v):
    return tuple(_hashable(e) for e in v) if isinstance(v, list) else v


def _num_close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return False
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= _ATOL + _RTOL * abs(b)


def _eq(a: Any, b: Any) -> bool:
    """Equality of two trusted (builtin-only) values with APPS-style leniency."""
    if isinstance(a, (bool, int, float)) and isinstance(b, (bool, int, float)):
        if isinstance(a, float) or isinstance(b, float):
            return _num_close(float(a), float(b))
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        for k, v in a.items():
            if k in b:
                if not _eq(v, b[k]):
                    return False
            elif isinstance(k, int) and str(k) in b:  # JSON turned int keys into str
                if not _eq(v, b[str(k)]):
                    return False
            else:
                return False
        return True
    if isinstance(a, frozenset) and isinstance(b, (list, tuple, set, frozenset)):
        try:
            return a == frozenset(_hashable(x) for x in b)
        except TypeError:
            return False
    if type(a) in (str, type(None)) and type(b) in (str, type(None)):
        return a == b
    return False


def compare_call_output(got: Any, expected: Any) -> bool:
    """APPS call-based rule: equal, or equal to the single element of a
    one-element expected list; tuples == lists; floats with tolerance."""
    if _eq(got, expected):
        return True
    if isinstance(expected, list) and len(expected) >= 1 and _eq(got, expected[0]):
        return True
    return False


def _lines(s: str) -> list[list[str]]:
    return [ln.split() for ln in s.splitlines() if ln.strip()]


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def compare_stdout(got: str, expected: Any) -> bool:
    """APPS-style stdout comparison: whitespace-insensitive per line, ignoring
    empty lines; otherwise line by line, token by token with float tolerance."""
    exp = "\n".join(map(str, expected)) if isinstance(expected, list) else str(expected)
    if got.strip() == exp.strip():
        return True
    g, e = _lines(got), _lines(exp)
    if g == e:
        return True
    if len(g) != len(e) or not g:
        return False
    for gl, el in zip(g, e):
        if len(gl) != len(el):
            return False
        for x, y in zip(gl, el):
            if x == y:
                continue
            if _is_float(x) and _is_float(y) and _num_close(float(x), float(y)):
                continue
            return False
    return True


# ----------------------------------------------------------------------- verdict
def _clip(s: str, n: int = _DETAIL_MAX) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _hexs(h: str) -> str:
    try:
        return bytes.fromhex(h).decode("utf-8", "replace")
    except ValueError:
        return "?"


def _short_repr(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _prepare(row: dict, memo: dict | None = None) -> tuple[dict, list, int]:
    """-> (request for the server, expected outputs (apps) , tests_total)."""
    fmt = row.get("format", "assert")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (row {row.get('id')!r})")
    tests = list(row.get("tests") or [])
    timeout = float(row.get("timeout_s") or DEFAULT_TIMEOUT_S)
    req: dict[str, Any] = {"code": row.get("code") or "", "timeout": timeout,
                           "mem": int(float(row.get("mem_mb") or DEFAULT_MEM_MB) * (1 << 20))}
    expected: list = []
    if fmt == "assert":
        req.update(mode="assert", tests=tests, setup=row.get("setup") or "")
        total = len(tests)
    elif fmt == "evalplus":
        if not row.get("entry_point"):
            raise ValueError(f"evalplus row {row.get('id')!r} needs entry_point")
        req, expected, total = _prepare_plus(row, req, row.get("tests") or [], memo)
    elif fmt == "humaneval":
        if not row.get("entry_point"):
            raise ValueError(f"humaneval row {row.get('id')!r} needs entry_point")
        req.update(mode="humaneval", tests=tests[:1], entry_point=row["entry_point"],
                   setup=row.get("setup") or "")
        total = 1
    else:
        parsed = []
        for t in tests:
            try:
                d = json.loads(t) if isinstance(t, str) else t
                parsed.append((d["input"], d["output"]))
            except (ValueError, KeyError, TypeError):
                parsed.append(None)
        expected = parsed
        total = len(tests)
        if fmt == "apps_call":
            if not row.get("fn_name"):
                raise ValueError(f"apps_call row {row.get('id')!r} needs fn_name")
            req.update(mode="call", fn_name=row["fn_name"],
                       calls=[json.dumps(p[0] if p else []) for p in parsed])
        else:
            stdins, caps = [], []
            for p in parsed:
                inp = p[0] if p else ""
                out = p[1] if p else ""
                stdins.append("\n".join(map(str, inp)) if isinstance(inp, list) else str(inp))
                exp = "\n".join(map(str, out)) if isinstance(out, list) else str(out)
                caps.append(min(16 << 20, 2 * len(exp.encode()) + (64 << 10)))
            req.update(mode="stdio", stdins=stdins, caps=caps)
            if row.get("fn_name"):  # APPS+: the program defines a function that reads stdin; call it per test
                req["fn_name"] = row["fn_name"]
    return req, expected, total


# ------------------------------------------------------------ evalplus format
_PLUS_MOD = None


def _plus_mod():
    """The value codec and EvalPlus oracle live in the sandbox child's file (one
    implementation for both sides); loaded here as a plain module (its ``main`` does
    not run)."""
    global _PLUS_MOD
    if _PLUS_MOD is None:
        import importlib.util
        spec = importlib.util.spec_from_file_location("gift._sandbox_child_codec", _CHILD)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _PLUS_MOD = mod
    return _PLUS_MOD


def encode_value(v: Any) -> str:
    """Strict lossless JSON text of a (trusted) value: tuples, sets, complex, big ints,
    non-finite floats, numpy values survive the round trip (see ``decode_value``)."""
    m = _plus_mod()
    if "numpy" in sys.modules and m._NP is None:
        m._init_numpy()
    return m._ser_plus(v, cap=1 << 40)


def decode_value(text_or_json: Any) -> Any:
    j = json.loads(text_or_json) if isinstance(text_or_json, str) else text_or_json
    return _plus_mod().dec_plus(j, _np())


def _np():
    try:
        import numpy
        return numpy
    except ImportError:  # pragma: no cover
        return None


_J = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
_PLUS_DEC: dict = {}  # id(parsed tests) -> (parsed tests, {i: (decoded expected, decoded input)})


def _prepare_plus(row: dict, req: dict, tests: list, memo: dict | None = None) -> tuple[dict, list, int]:
    """Parse an evalplus row.  Rows of one execute() call that share the same ``tests`` list
    object (one per task, as gift.evalplus builds them) are parsed once (``memo``)."""
    dataset = row.get("dataset") or ""
    ep = row["entry_point"]
    key = (id(tests), dataset, ep)
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] is tests:
        parsed = hit[1]
    else:
        parsed = _parse_plus_tests(row, tests, dataset, ep)
        if memo is not None:
            memo[key] = (tests, parsed)
    inputs, exps, limits, atols, groups, meta, needs_input = parsed
    if not row.get("timeout_s"):  # EvalPlus: min(60, sum of the per-input limits) + 1 per split
        per: dict[int, float] = {}
        for g, lim in zip(groups, limits):
            per[g] = per.get(g, 0.0) + (lim or 1.0)
        req["timeout"] = sum(min(60.0, v) + 1.0 for v in per.values()) if per else DEFAULT_TIMEOUT_S
    req.update(mode="plus", entry_point=ep, setup=row.get("setup") or "", inputs=inputs,
               expected=exps, limits=limits, stop_first=bool(row.get("stop_first", True)),
               cmp={"entry_point": ep, "dataset": dataset, "atol": atols, "group": groups,
                    "needs_input": needs_input})
    expected = [{"meta": meta, "atol": atols, "group": groups, "dataset": dataset, "entry_point": ep,
                 "needs_input": needs_input, "limits": limits, "timeout": req["timeout"], "dec": {}}]
    return req, expected, len(tests)


def _parse_plus_tests(row: dict, tests: list, dataset: str, ep: str) -> tuple:
    inputs, exps, limits, atols, groups, meta = [], [], [], [], [], []
    for t in tests:
        d = json.loads(t) if isinstance(t, str) else t
        if not isinstance(d, dict) or "input" not in d or not isinstance(d["input"], list):
            raise ValueError(f"evalplus row {row.get('id')!r}: a test needs an \"input\" list")
        has_exp = "expected" in d
        exp = d["expected"] if has_exp else None
        inputs.append(_J.encode(d["input"]))
        exps.append(_J.encode(exp) if has_exp else None)
        lim = d.get("time_limit")
        limits.append(float(lim) if lim else None)
        atols.append(float(d.get("atol") or 0.0))
        groups.append(int(d.get("group") or 0))
        meta.append((has_exp, exp, d["input"]))
    needs_input = (dataset == "mbpp" and ep in ("surface_Area", "digit_distance_nums")) or (
        dataset == "humaneval" and ep == "find_zero")
    return inputs, exps, limits, atols, groups, meta, needs_input


def _verdict_plus(row: dict, info: dict, total: int, raw: dict, out: dict) -> dict:
    """Parent-side EvalPlus comparison of the recorded return values, input by input in
    order, stopping at the first failure (EvalPlus's default ``fast_check``)."""
    m = _plus_mod()
    meta, atols, groups = info["meta"], info["atol"], info["group"]
    ep, dataset = info["entry_point"], info["dataset"]
    ng = (max(groups) + 1) if groups else 0
    g_total = [0] * ng
    for g in groups:
        g_total[g] += 1
    g_pass = [0] * ng
    want_out = bool(row.get("return_outputs"))
    outputs: list = [None] * total
    times: list = [None] * total
    code_ev = None
    first_fail = None  # (i, kind, why)
    seen = 0
    st = {"g": None, "atol": 0.0}
    np = None
    stop_first = bool(row.get("stop_first", True))  # else: keep recording outputs after a failure
    for body in raw.get("events", []):
        parts = body.split(" ")
        if parts[0] == "C":
            code_ev = parts
            continue
        if parts[0] != "T" or len(parts) < 3 or (first_fail is not None and stop_first):
            continue
        try:
            i = int(parts[1])
        except ValueError:
            continue
        if i != seen or i >= total:
            continue
        seen += 1
        g = groups[i]
        if st["g"] != g:
            st["g"], st["atol"] = g, atols[i]
        if parts[2] != "ok":
            kind = parts[3] if len(parts) > 3 else "exc"
            why = _hexs(parts[4]) if len(parts) > 4 else kind
            if kind == "unser":
                why = "return value not serialisable: " + why
            if first_fail is None:
                first_fail = (i, kind, why)
            continue
        payload = parts[3] if len(parts) > 3 else "null"
        try:
            times[i] = [float(parts[4]), float(parts[5])]
        except (IndexError, ValueError):
            pass
        has_exp, exp, inp = meta[i]
        if not has_exp:
            outputs[i] = payload
            if first_fail is None:
                g_pass[g] += 1
            continue
        try:
            if np is None:
                np = _np()
            got = m.dec_plus(json.loads(payload), np)
            dc = _PLUS_DEC.get(id(meta))
            if dc is None or dc[0] is not meta:
                if len(_PLUS_DEC) > 4096:
                    _PLUS_DEC.clear()
                dc = _PLUS_DEC[id(meta)] = (meta, {})
            if i not in dc[1]:
                dc[1][i] = (m.dec_plus(exp, np), m.dec_plus(inp, np) if info["needs_input"] else ())
            expv, inpv = dc[1][i]
            ok, st["atol"] = m.plus_compare(got, expv, st["atol"], ep, dataset, inpv, np)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            ok, got = False, f"<undecodable: {type(e).__name__}>"
            expv = exp
        if want_out:
            outputs[i] = payload
        if ok and first_fail is None:
            g_pass[g] += 1
        elif not ok and first_fail is None:
            first_fail = (i, "wrong", f"wrong output: got {_short_repr(got)} expected {_short_repr(expv)}")
    passed_n = sum(g_pass)
    out["tests_passed"] = passed_n
    out["groups"] = [{"passed": g_pass[g] == g_total[g] and g_total[g] > 0, "tests_passed": g_pass[g],
                      "tests_total": g_total[g]} for g in range(ng)]
    if want_out:
        out["outputs"], out["times"] = outputs, times
    complete = raw.get("complete") and not raw.get("tampered")

    def inp_src(i):
        return " | input " + _short_repr(meta[i][2], 80) if 0 <= i < len(meta) else ""

    def fail_all():
        for gg in out["groups"]:
            gg["passed"] = False

    if raw.get("tampered"):
        fail_all()
        out.update(status="failed", detail="result record failed verification (tampering)")
        return out
    if code_ev is not None and code_ev[1] == "err" and complete:
        fail_all()
        kind = code_ev[2] if len(code_ev) > 2 else "exc"
        msg = _hexs(code_ev[3]) if len(code_ev) > 3 else ""
        st_ = {"memory": "memory", "exit": "failed"}.get(kind, "error")
        pre = "exited at top level: " if kind == "exit" else "top-level error: "
        out.update(status=st_, detail=_clip(pre + msg))
        return out
    if first_fail is not None:
        fail_all_after = first_fail[0]
        for gg, gi in zip(out["groups"], range(ng)):
            if gi >= groups[fail_all_after]:
                gg["passed"] = False
        i, kind, why = first_fail
        out.update(status="memory" if kind == "memory" else "failed", detail=_clip(f"test {i}: {why}{inp_src(i)}"))
        return out
    if complete and code_ev is not None:
        if total == 0:
            out.update(status="failed", detail="no tests")
        elif passed_n == total:
            out.update(passed=True, status="passed", detail=f"all {total} tests passed")
        else:
            out.update(status="failed", detail=_clip(f"test {seen}: not run (stopped early){inp_src(seen)}"))
        return out
    # incomplete record: nothing after the last recorded input is proven
    for gi in range(ng):
        if seen < total and gi >= groups[min(seen, total - 1)]:
            out["groups"][gi]["passed"] = False
    sig = raw.get("signal")
    lim = info["limits"][seen] if seen < total else None
    if sig == 27 or (sig is not None and _sig_name(sig) in ("SIGPROF", "SIGXCPU")):
        out.update(status="timeout", detail=_clip(
            f"test {seen}: time limit exceeded ({lim:g}s CPU)" if lim and _sig_name(sig) == "SIGPROF"
            else "CPU time limit exceeded") + inp_src(seen))
        return out
    if raw.get("timed_out"):
        out.update(status="timeout", detail=f"timeout after {info['timeout']:g}s wall during test {seen}")
    elif sig is not None:
        name = _sig_name(sig)
        if name in ("SIGSEGV", "SIGBUS", "SIGABRT") and code_ev is None:
            out.update(status="killed", detail=f"killed by {name} (possibly out of memory)")
        else:
            out.update(status="killed", detail=f"killed by {name} during test {seen}")
    else:
        _exited_unproven(out, raw, code_ev, seen)
    return out


def _exited_unproven(out: dict, raw: dict, code_ev, test_no: int) -> None:
    """The verdict of a child that exited without its final record: it died before the harness started
    (``killed``), or the candidate ended the process itself (``failed``: nothing is proven)."""
    if not raw.get("has_key"):
        out.update(status="killed", detail=_clip(f"sandbox child failed before the harness started (exit {raw.get('exit')})"))
    else:
        where = "during top-level code" if code_ev is None else f"during test {test_no}"
        out.update(status="failed", detail=f"candidate exited (code {raw.get('exit')}) {where}; "
                                           "the harness could not prove the tests passed")


def _sig_name(sig: int) -> str:
    import signal as _signal
    return _signal.Signals(sig).name if sig in _signal.Signals._value2member_map_ else str(sig)


def _verdict(row: dict, fmt: str, expected: list, total: int, raw: dict) -> dict:
    out = {"id": row.get("id"), "passed": False, "status": "failed", "tests_passed": 0,
           "tests_total": total, "duration_s": round(float(raw.get("duration", 0.0)), 4),
           "detail": ""}
    if "server_error" in raw:
        out.update(status="killed", detail=_clip("sandbox error: " + raw["server_error"]))
        return out
    if fmt == "evalplus":
        return _verdict_plus(row, expected[0], total, raw, out)
    tests = row.get("tests") or []
    code_ev = None
    results: dict[int, tuple[bool, str, str]] = {}  # i -> (ok, kind, detail)
    first_fail: tuple[int, str, str] | None = None
    for body in raw.get("events", []):
        parts = body.split(" ")
        if parts[0] == "C":
            code_ev = parts
            continue
        if parts[0] != "T" or len(parts) < 3:
            continue
        try:
            i = int(parts[1])
        except ValueError:
            continue
        ok, why = False, ""
        if fmt == "apps_stdio":  # T i <kind> <stdout hex>
            kind, arg = parts[2], (parts[3] if len(parts) > 3 else "")
        elif parts[2] == "fail":  # T i fail <kind> <detail hex>
            kind, arg = (parts[3] if len(parts) > 3 else "exc"), (parts[4] if len(parts) > 4 else "")
        else:  # T i ok [<payload hex>]
            kind, arg = "ok", (parts[3] if len(parts) > 3 else "")
        if fmt == "apps_stdio":
            got = _hexs(arg)
            exp = expected[i][1] if i < len(expected) and expected[i] else None
            if exp is None:
                why = "malformed test case"
            elif kind == "ok":
                ok = compare_stdout(got, exp)
                why = "" if ok else f"wrong output: got {_short_repr(got)} expected {_short_repr(exp)}"
            elif kind == "toolong":
                why = "output too long"
            else:
                why = {"exit": "non-zero exit", "memory": "MemoryError",
                       "exc": "uncaught exception"}.get(kind, kind)
        elif fmt == "apps_call" and kind == "ok":
            exp = expected[i][1] if i < len(expected) and expected[i] else None
            try:
                got = _decode(json.loads(_hexs(arg)))
            except (ValueError, IndexError, TypeError, KeyError) as e:
                got, why = None, f"undecodable return value ({type(e).__name__})"
            if exp is None:
                why = "malformed test case"
            elif not why:
                ok = compare_call_output(got, exp)
                why = "" if ok else f"wrong output: got {_short_repr(got)} expected {_short_repr(exp)}"
        elif kind == "ok":
            ok = True
        else:
            why = _hexs(arg) or kind
            if kind == "memory":
                why = why or "MemoryError"
        results[i] = (ok, kind, why)
        if not ok and first_fail is None:
            first_fail = (i, kind, why)
    passed_n = sum(1 for i, r in results.items() if r[0] and 0 <= i < total)
    out["tests_passed"] = passed_n
    complete = raw.get("complete") and not raw.get("tampered")

    def test_src(i):
        if fmt in ("assert",) and i < len(tests):
            return " | " + tests[i].strip().splitlines()[0][:100] if tests[i].strip() else ""
        return ""

    if raw.get("tampered"):
        out.update(status="failed", detail="result record failed verification (tampering)")
        return out
    if code_ev is not None and code_ev[1] == "err" and complete:
        kind = code_ev[2] if len(code_ev) > 2 else "exc"
        msg = _hexs(code_ev[3]) if len(code_ev) > 3 else ""
        st = {"memory": "memory", "exit": "failed"}.get(kind, "error")
        pre = "exited at top level: " if kind == "exit" else "top-level error: "
        out.update(status=st, detail=_clip(pre + msg))
        return out
    if complete and code_ev is not None:
        if total == 0:
            out.update(status="failed", detail="no tests")
        elif passed_n == total and len(results) == total:
            out.update(passed=True, status="passed", detail=f"all {total} tests passed")
        else:
            mem = any(r[1] == "memory" for r in results.values() if not r[0])
            i, kind, why = first_fail if first_fail else (len(results), "missing", "test not run")
            out.update(status="memory" if mem else "failed",
                       detail=_clip(f"test {i}: {why}{test_src(i)}"))
        return out
    # incomplete record: the harness could not prove anything
    sig = raw.get("signal")
    if raw.get("timed_out"):
        out.update(status="timeout", detail=f"timeout after {float(row.get('timeout_s') or DEFAULT_TIMEOUT_S):g}s"
                   + (f" ({passed_n}/{total} tests passed before)" if passed_n else ""))
    elif sig is not None:
        import signal as _signal
        name = _signal.Signals(sig).name if sig in _signal.Signals._value2member_map_ else str(sig)
        if name == "SIGXCPU":
            out.update(status="timeout", detail="CPU time limit exceeded")
        elif name in ("SIGSEGV", "SIGBUS", "SIGABRT") and code_ev is None:
            out.update(status="killed", detail=f"killed by {name} (possibly out of memory)")
        elif name == "SIGXFSZ":
            out.update(status="killed", detail="file size limit exceeded (SIGXFSZ)")
        else:
            out.update(status="killed", detail=f"killed by {name}")
    else:
        _exited_unproven(out, raw, code_ev, len(results))
    return out


# --------------------------------------------------------------------------- API
def _bad_row(row: dict, e: Exception) -> dict:
    return {"id": row.get("id"), "passed": False, "status": "error", "tests_passed": 0,
            "tests_total": len(row.get("tests") or []), "duration_s": 0.0,
            "detail": _clip(f"bad row: {e}")}


def _is_heavy(row: dict) -> bool:
    return not _row_needs(row).isdisjoint(_HEAVY)


def _drive(servers: list[_Server], jobs: dict, timeouts: dict, heavy_q: collections.deque, light_q: collections.deque,
           finish, heavy_rows: set | None = None) -> None:
    """Single-threaded dispatcher: keeps up to ``slots + 2`` requests in flight per
    server (the server queues them and overlaps blocked candidates), reads
    results as they come and hands them to ``finish(i, raw)``."""
    sel = selectors.DefaultSelector()
    state: dict[_Server, dict] = {}
    retries: dict[int, int] = {}
    solo_q: collections.deque = collections.deque()
    asked: set = set()  # rows a server was asked to give back (steal)

    def register(s: _Server):
        os.set_blocking(s.proc.stdin.fileno(), False)
        os.set_blocking(s.proc.stdout.fileno(), False)
        st = {"inflight": {}, "out": bytearray(), "in": bytearray(), "last": time.monotonic(),
              "wreg": False}
        state[s] = st
        sel.register(s.proc.stdout.fileno(), selectors.EVENT_READ, s)

    def next_job(s: _Server):
        if s.heavy or not any(x.heavy for x in state):
            if heavy_q:
                return heavy_q.popleft()
        if light_q:
            return light_q.popleft()
        if heavy_q and not any(x.heavy for x in state):
            return heavy_q.popleft()
        return None

    def fill(s: _Server):
        st = state[s]
        if solo_q:  # rows that were lost twice run alone, on a server with nothing else in flight
            if not st["inflight"]:
                i = solo_q.popleft()
                st["inflight"][i] = time.monotonic()
                st["solo"] = True
                st["out"] += jobs[i]
            flush(s)
            return
        if st.get("solo") and st["inflight"]:
            flush(s)
            return
        st["solo"] = False
        while len(st["inflight"]) < s.slots + 2:
            i = next_job(s)
            if i is None:
                break
            st["inflight"][i] = time.monotonic()
            st["out"] += jobs[i]
        flush(s)

    def flush(s: _Server):
        st = state[s]
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
            sel.register(fd, selectors.EVENT_WRITE, ("w", s))
            st["wreg"] = True
        elif not st["out"] and st["wreg"]:
            sel.unregister(fd)
            st["wreg"] = False

    def steal():
        """Nothing left to hand out and a server is idle: ask the busiest server to give back the
        requests it has queued but not started (e.g. behind a long-running candidate); they come back
        as ``cancelled`` and go to the idle server. Each row is asked for at most once."""
        if heavy_q or light_q or solo_q:
            return
        idle = [s for s, st in state.items() if not st["inflight"]]
        if not idle:
            return
        for s, st in state.items():
            if len(st["inflight"]) < 2 or st.get("solo"):
                continue
            if not any(x.heavy or not s.heavy for x in idle):  # an idle server must be able to take the rows
                continue
            for i in sorted(st["inflight"], key=st["inflight"].get)[1:]:  # the oldest is running
                if i not in asked:
                    asked.add(i)
                    st["out"] += json.dumps({"cancel": i}).encode() + b"\n"
            flush(s)

    def died(s: _Server, why: str):
        st = state.pop(s)
        for fd in (s.proc.stdout.fileno(), s.proc.stdin.fileno()):
            try:
                sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        why = f"{why}; {s.death_cause()}"
        for i in st["inflight"]:
            retries[i] = retries.get(i, 0) + 1
            if retries[i] >= 3 or (st.get("solo") and retries[i] >= 2):
                # lost even when it ran alone: this candidate is what takes the server down
                finish(i, {"server_error": f"sandbox server died ({why}); restarted", "duration": 0.0})
            elif retries[i] == 2:  # lost twice: run it alone, so it cannot be a bystander again
                solo_q.append(i)
            else:  # it may have been an innocent bystander of the candidate that killed it
                (heavy_q if s.heavy else light_q).appendleft(i)
        new = _POOL.replace(s)
        register(new)
        for x in list(state):
            fill(x)

    for s in servers:
        register(s)
    for s in servers:
        fill(s)
    steal()
    while solo_q or any(st["inflight"] for st in state.values()):
        now = time.monotonic()
        for s, st in list(state.items()):  # a server silent for far too long is hung
            if st["inflight"] and now - st["last"] > (3 * sum(timeouts[i] for i in st["inflight"]) + 60.0):
                s._kill()
                s.proc.wait()
                died(s, "no answer")
        for key, ev in sel.select(1.0):
            s = key.data if isinstance(key.data, _Server) else key.data[1]
            if s not in state:
                continue
            if not isinstance(key.data, _Server):
                flush(s)
                continue
            st = state[s]
            try:
                data = os.read(key.fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                died(s, "sandbox server died")
                continue
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
                        (heavy_q if heavy_rows is not None and i in heavy_rows else light_q).append(i)
                        for x in sorted(state, key=lambda x: len(state[x]["inflight"])):  # the idle ones first
                            fill(x)
                    else:
                        finish(i, raw)
            fill(s)
            steal()
    sel.close()
    for s in state:
        os.set_blocking(s.proc.stdin.fileno(), True)
        os.set_blocking(s.proc.stdout.fileno(), True)


# Fork servers per CPU core (``workers``). Each server runs at most one CPU-bound candidate at a time
# and is idle while it forks, reaps and reports; a second server per core keeps the core busy
# meanwhile (+20 % candidates/s on short programs, benchmarks/bench_execute.py). Timeouts stay fair:
# time a candidate waits for a CPU extends its deadline (up to 4 x timeout_s + 1 s).
SERVERS_PER_CORE = 2


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
                print(f"[gift.execute] {done[0]}/{len(rows)} ({rate:.1f}/s)", file=sys.stderr)

    if jobs:
        with _RUN_LOCK:
            n, n_heavy = _server_counts(workers, len(jobs), len(heavy_q))
            servers = _POOL.ensure(n, frozenset(need), n_heavy)
            ok = False
            try:
                _drive(servers, jobs, timeouts, heavy_q, light_q, finish, heavy_rows=set(heavy_q))
                ok = True
            finally:
                if not ok:  # servers may still hold requests of this call: drop them
                    _POOL.shutdown()
    _PLUS_DEC.clear()
    return results  # type: ignore[return-value]


def execute_one(row: dict) -> dict:
    return execute([row], workers=1)[0]


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gift.execute", description=__doc__.split("\n\n")[0])
    ap.add_argument("inp", help="input JSONL (rows with id, code, tests, format, ...)")
    ap.add_argument("out", help="output JSONL (written atomically)")
    ap.add_argument("--workers", type=int, default=None,
                    help=f"CPU cores to use (default: all; {SERVERS_PER_CORE} fork servers per core)")
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args(argv)
    rows = read_jsonl(a.inp)
    res = execute(rows, workers=a.workers, progress=a.progress)
    write_jsonl(a.out, res)
    n = sum(r["passed"] for r in res)
    print(f"{n}/{len(res)} passed -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
