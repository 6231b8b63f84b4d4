"""The candidate process: isolation (session, fds, temp dir, environment, rlimits, uid, audit hook),
then the harness of the request's test format."""

import builtins
import json
import os
import resource
import signal
import sys
import time
from _blake2 import blake2b  # (hashlib would load OpenSSL into the server)

from .codec import _ser_plus
from .hook import _install_hook, _neuter_signals
from .oracle import _plus_hint


# ------------------------------------------------------------------------ runner
def _exc_info(e):
    """(kind, detail) of an exception without trusting user overrides much."""
    try:
        tname = type.__dict__["__name__"].__get__(type(e))
    except BaseException:
        tname = "Exception"
    if isinstance(e, MemoryError):
        kind = "memory"
    elif isinstance(e, SystemExit):
        kind = "exit"
    elif isinstance(e, SyntaxError):
        kind = "syntax"
    else:
        kind = "exc"
    try:
        msg = BaseException.__str__(e)
    except BaseException:
        msg = ""
    try:
        msg = msg[:200] if type(msg) is str else ""
    except BaseException:
        msg = ""
    d = tname + (": " + msg if msg else "")
    return kind, d.encode("utf-8", "replace").hex()


def _runner(
    req,
    tests,
    calls,
    _audit=sys.audit,
    _exec=exec,
    _BaseException=BaseException,
    _str=str,
    _enumerate=enumerate,
    _exc_info=_exc_info,
    _getattr=getattr,
    _isinstance=isinstance,
    _type=type,
    _len=len,
    _dict=dict,
    _setitimer=signal.setitimer,
    _ITIMER_PROF=signal.ITIMER_PROF,
    _ptime=time.process_time,
    _perf=time.perf_counter,
    _frepr=float.__repr__,
    _ser_plus=_ser_plus,
    _plus_hint=_plus_hint,
):
    """Runs the candidate and the tests.  Every verdict goes through gift.rec
    audit events, accepted by the hook only from this code object, in order."""
    mode = req["mode"]
    ns = {"__name__": "__gift_candidate__", "__builtins__": builtins}
    try:
        code = compile(req["code"], "<candidate>", "exec")
        _exec(code, ns)
        if req.get("setup"):
            _exec(compile(req["setup"], "<setup>", "exec"), ns)
    except _BaseException as e:
        kind, d = _exc_info(e)
        _audit("gift.rec", "C err " + kind + " " + d)
        _audit("gift.rec", "E")
        return
    _audit("gift.rec", "C ok")
    if mode == "call":
        fn = None
        try:
            sol = ns.get("Solution")
            if _isinstance(sol, _type) and _getattr(sol, req["fn_name"], None) is not None:
                fn = _getattr(sol(), req["fn_name"])
            else:
                fn = ns[req["fn_name"]]
        except _BaseException as e:
            kind, d = _exc_info(e)
            fn = None
            missing = "exc " + d
        for i, args in _enumerate(calls):
            if fn is None:
                _audit("gift.rec", "T " + _str(i) + " fail " + missing)
                continue
            try:
                if _isinstance(args, list) and args and _type(args[0]) is _dict:
                    try:
                        args = [{int(k): v for k, v in args[0].items()}] + args[1:]
                    except _BaseException:
                        pass
                res = fn(*args) if _isinstance(args, list) else fn(args)
                payload = _ser_plus(res, 8 << 20)
                _audit("gift.rec", "T " + _str(i) + " ok " + payload.encode().hex())
            except _BaseException as e:
                kind, d = _exc_info(e)
                _audit("gift.rec", "T " + _str(i) + " fail " + kind + " " + d)
    elif mode == "plus":
        # evalplus format: fn(*input) per input, the return value strictly serialised here
        # and compared by the parent; per-input CPU limit (ITIMER_PROF, default action:
        # terminate); stops at the first input the (advisory) child-side check rejects.
        missing = None
        try:
            fn = ns[req["entry_point"]]
        except _BaseException as e:
            kind, d = _exc_info(e)
            missing = "exc " + d
        lims = req.get("limits") or ()
        stop = req.get("stop_first", True)
        hint_state = {}
        for i, args in _enumerate(calls):
            if missing is not None:
                _audit("gift.rec", "T " + _str(i) + " fail " + missing)
                break
            lim = lims[i] if i < _len(lims) else None
            try:
                if lim:
                    _setitimer(_ITIMER_PROF, lim)
                c0, w0 = _ptime(), _perf()
                res = fn(*args)
                c1, w1 = _ptime(), _perf()
                if lim:
                    _setitimer(_ITIMER_PROF, 0)
            except _BaseException as e:
                if lim:
                    _setitimer(_ITIMER_PROF, 0)
                kind, d = _exc_info(e)
                _audit("gift.rec", "T " + _str(i) + " fail " + kind + " " + d)
                if stop:
                    break
                continue
            try:
                payload = _ser_plus(res)
            except _BaseException as e:
                kind, d = _exc_info(e)
                _audit("gift.rec", "T " + _str(i) + " fail unser " + d)
                if stop:
                    break
                continue
            _audit("gift.rec", "T " + _str(i) + " ok " + payload + " " + _frepr(c1 - c0) + " " + _frepr(w1 - w0))
            if stop and not _plus_hint(payload, i, req, hint_state):
                break
    else:
        for i, tc in _enumerate(tests):
            try:
                if _type(tc) is _str:  # compile error of the test itself
                    raise SyntaxError(tc)
                _exec(tc, ns)
                if mode == "humaneval":
                    ns["check"](ns[req["entry_point"]])
                _audit("gift.rec", "T " + _str(i) + " ok")
            except _BaseException as e:
                kind, d = _exc_info(e)
                _audit("gift.rec", "T " + _str(i) + " fail " + kind + " " + d)
    _audit("gift.rec", "E")


def _run_exec_mode(req, fd, tests):
    calls = []
    if req["mode"] in ("assert", "humaneval"):
        tests = list(tests or ())  # compiled by the server (cached per test source)
    elif req["mode"] == "plus":
        calls = list(tests or ())  # inputs decoded by the server (cached per input text)
        tests = []
    else:
        tests = []
        for s in req.get("calls") or []:
            calls.append(json.loads(s))
    key = os.urandom(32)
    line = ("K " + key.hex() + "\n").encode()
    os.write(fd, line)
    del line
    _neuter_signals()
    _install_hook(key, fd, (_runner.__code__, _run_exec_mode.__code__, _child.__code__))
    del key  # from here on the key lives only in the audit hook's closure
    _runner(req, tuple(tests), tuple(calls))
    try:
        sys.stdout.flush()
    except BaseException:
        pass


def _run_stdio_mode(req, fd, tmp):
    """The harness process never runs candidate code: one grandchild per test."""
    key = bytearray(os.urandom(32))
    os.write(fd, ("K " + bytes(key).hex() + "\n").encode())

    def mac(line):
        return blake2b(line.encode(), key=bytes(key), digest_size=16).hexdigest()

    seq = [0]

    def emit(body):
        line = f"{seq[0]} {body}"
        seq[0] += 1
        data = (line + " " + mac(line) + "\n").encode()
        while data:
            data = data[os.write(fd, data) :]

    try:
        code = compile(req["code"], "<candidate>", "exec")
    except BaseException as e:
        kind, d = _exc_info(e)
        emit("C err " + kind + " " + d)
        emit("E")
        return
    emit("C ok")
    for i, inp in enumerate(req.get("stdins") or []):
        cap = int(req["caps"][i])
        infd = os.open(tmp, os.O_TMPFILE | os.O_RDWR, 0o600)
        data = inp.encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(infd, data) :]
        os.lseek(infd, 0, 0)
        outr, outw = os.pipe()
        pid = os.fork()
        if pid == 0:  # grandchild: runs the program
            rc = 1
            try:
                for j in range(len(key)):
                    key[j] = 0
                fn_name = req.get("fn_name")
                if fn_name:
                    # APPS+: the module runs with an empty stdin and its output discarded, then the named
                    # function runs with the test's stdin and stdout; the same sys.stdin / sys.stdout
                    # objects read and write the new fds (code that bound them at import still works)
                    os.dup2(infd, 60)  # (below the candidate's RLIMIT_NOFILE of 64; infd/outw are small)
                    os.dup2(outw, 61)
                    dn = os.open("/dev/null", os.O_RDWR)
                    os.dup2(dn, 0)
                    os.dup2(dn, 1)
                    os.closerange(3, 60)
                    os.closerange(62, 65536)
                else:
                    os.dup2(infd, 0)
                    os.dup2(outw, 1)
                    os.closerange(3, 65536)
                sys.stdin = open(0, closefd=False)
                sys.stdout = open(1, "w", closefd=False)
                _neuter_signals()
                _install_hook(None, -1, ())
                try:
                    rc = 0
                    ns = {"__name__": "__main__", "__builtins__": builtins}
                    exec(code, ns)
                    if fn_name:
                        fn = ns[fn_name]
                        sys.stdout.flush()
                        os.dup2(60, 0)
                        os.dup2(61, 1)
                        os.close(60)
                        os.close(61)
                        fn()
                except SystemExit as e:
                    c = e.code
                    rc = 0 if c is None or c == 0 else 2
                except MemoryError:
                    rc = 3
                except BaseException:
                    rc = 1
                try:
                    sys.stdout.flush()
                except BaseException:
                    rc = rc or 4
            finally:
                os._exit(rc)
        os.close(outw)
        os.close(infd)
        buf, total = [], 0
        while True:
            chunk = os.read(outr, 1 << 16)
            if not chunk:
                break
            if total < cap:
                buf.append(chunk[: cap - total])
            total += len(chunk)
        os.close(outr)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            kind = f"signal{os.WTERMSIG(status)}"
        else:
            kind = {0: "ok", 2: "exit", 3: "memory", 4: "exc"}.get(os.WEXITSTATUS(status), "exc")
        if total > cap:
            kind = "toolong" if kind == "ok" else kind
        emit(f"T {i} {kind} {b''.join(buf).hex()}")
    emit("E")


# ------------------------------------------------------------------------- child
def _child(req, tmp, wfd, uid, tests=None):
    os.setsid()
    hi = 100 + os.urandom(1)[0] * 3  # (no Python-level random here: every touched page is a copy)
    os.dup2(wfd, hi, inheritable=False)
    dn = os.open("/dev/null", os.O_RDWR)
    for t in (0, 1, 2):
        os.dup2(dn, t)
    os.closerange(3, hi)
    os.closerange(hi + 1, 65536)
    os.chdir(tmp)
    env = os.environ  # already _BASE_ENV (scrubbed once in the server)
    env["HOME"] = tmp
    env["TMPDIR"] = tmp
    mods = sys.modules
    if "tempfile" in mods:  # (else a candidate's tempfile finds TMPDIR)
        mods["tempfile"].tempdir = tmp
    if "random" in mods:  # held when the batch names it; os.fork reseeded it from urandom:
        mods["random"].seed(0)  # the same sequence for every candidate, every run
    timeout = float(req.get("timeout", 10.0))
    lim = [
        (resource.RLIMIT_AS, int(req.get("mem", 4 << 30))),
        (resource.RLIMIT_CPU, int(timeout) + 2),
        (resource.RLIMIT_FSIZE, int(req.get("fsize", 10 << 20))),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ]
    if uid:
        lim.append((resource.RLIMIT_NPROC, int(req.get("nproc", 16))))
    for r, v in lim:
        try:
            resource.setrlimit(r, (v, v))
        except (ValueError, OSError):
            pass
    if uid:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    sys.dont_write_bytecode = True
    # sys.stdin/stdout/stderr: the server's own objects on fds 0/1/2 (_own_streams; empty buffers,
    # the server talks through os.read/os.write), which now read and write /dev/null
    if req["mode"] == "stdio":
        _run_stdio_mode(req, hi, tmp)
    else:
        _run_exec_mode(req, hi, tests)
