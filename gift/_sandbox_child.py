"""Fork server + in-child harness of the GiFT execution sandbox.

This file is run as a *standalone script* (``python -I gift/_sandbox_child.py``)
by :mod:`gift.execute`, normally inside ``unshare --net --pid --mount``.  It
never imports anything from the ``gift`` package, so the candidate process
(a fork of this server) holds nothing of the caller (no torch, no secrets).

Protocol (stdin/stdout of the server, one JSON object per line):
  parent -> server: request  {"mode": "assert"|"humaneval"|"call"|"stdio", ...}
  server -> parent: result   {"events": [...], "complete": bool, ...}
The first line the server writes is a hello object describing the isolation
that is in effect.

Per candidate the server forks a child which: starts a new session, points
0/1/2 at /dev/null, keeps only the record pipe (moved to a random high fd),
chdirs into a fresh temp dir, scrubs the environment, applies rlimits, drops
to a per-server unprivileged uid (when the interpreter stays readable), and
installs an audit hook, then runs the candidate.  Results are reported as
lines MAC'd with a key that is created in the child after the fork and sent
to the server before any candidate code runs.  See docs/execution.md.
"""

import builtins
import collections
import gc
import hashlib
import json
import os
import resource
import selectors
import shutil
import signal
import stat
import sys
import time

# Always pre-imported by the fork server (cheap, and used by most generated code; the server
# needs json, hashlib, selectors, ... itself; not random or tempfile: see Server.__init__).
_PREIMPORT = "re math cmath collections collections.abc itertools functools heapq bisect string".split()
# Pre-imported only when the caller asks (GIFT_SANDBOX_PREIMPORT; gift.execute asks for those a
# batch's code mentions): every module held by the server makes each fork and exit dearer (page
# tables to copy and tear down), an unused one for nothing.  Not threading (nor queue, which
# imports it): it registers an at-fork callback that would run in every child and copy ~140 pages
# of the server's heap; a candidate that needs it imports it in ~1 ms.  benchmarks/bench_execute.py
_OPTIONAL = (
    "datetime typing fractions decimal statistics copy operator array textwrap unicodedata "
    "calendar dataclasses enum numbers abc contextlib struct base64 binascii zlib csv pprint "
    "weakref traceback warnings locale difflib fnmatch glob keyword types inspect ast hmac "
    "secrets uuid json random time io hashlib"
).split()

# The environment every candidate starts from (HOME and TMPDIR are set per candidate).
# The server scrubs its own environment to this once, so a child only sets two keys.
_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
             "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _own_streams():
    """Make sys.stdin/stdout/stderr stream objects on fds 0/1/2 (once, in the server): a forked
    child, whose 0/1/2 point at /dev/null, keeps them instead of building three new ones."""
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        f = getattr(sys, name)
        try:
            ok = f is not None and f.fileno() == fd
        except (AttributeError, ValueError, OSError):
            ok = False
        if not ok:
            setattr(sys, name, open(fd, mode, closefd=False))


_LOADED = []  # what of GIFT_SANDBOX_PREIMPORT the server has loaded (reported in the hello)

RECORD_CAP = 64 << 20  # bytes of record kept by the server per candidate

_BLOCKED_EVENTS = frozenset((
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
    "sys.settrace", "sys.setprofile", "sys.addaudithook", "os.fork", "os.forkpty",
    "os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "pty.spawn",
    "os.kill", "os.killpg", "socket.__new__", "socket.connect", "socket.bind",
    "socket.sendto", "socket.getaddrinfo", "os.chroot", "os.symlink", "os.link",
))
_BLOCKED_IMPORTS = frozenset(("ctypes", "_ctypes", "cffi", "_posixsubprocess", "_signal",
                              "_xxsubinterpreters", "_testcapi", "_testinternalcapi"))
_WATCH = _BLOCKED_EVENTS | frozenset((
    "gift.rec", "open", "import", "exec", "function.__new__", "object.__getattr__"))
_DENY_PARTS = frozenset(("mem", "kmem", "kcore", "fd", "fdinfo", "map_files", "pagemap",
                         "task", "environ", "syscall"))


# --------------------------------------------------------------------------- hook
def _install_hook(key, fd, protected):
    """Install the audit hook.  ``key`` None -> blocking only, no record."""
    _write, _mac, _getframe, _type, _str, _bytes, _int = (
        os.write, hashlib.blake2b, sys._getframe, type, str, bytes, int)
    _RuntimeError, _len = RuntimeError, len
    from _thread import get_ident as _ident
    busy = set()
    st = {"seq": 0, "phase": 0, "next": 0, "bad": False}  # phase 0: code, 1: tests, 2: done
    runner_code = protected[0] if protected else None

    def _emit(body):
        line = _str(st["seq"]) + " " + body
        mac = _mac(line.encode(), key=key, digest_size=16).hexdigest()
        data = (line + " " + mac + "\n").encode()
        st["seq"] += 1
        while data:
            n = _write(fd, data)
            data = data[n:]

    def _denied(p):
        for c in p.split("/"):
            if c in _DENY_PARTS:
                return True
        return False

    def hook(event, args):
        if event not in _WATCH:
            if event[:7] == "ctypes.":
                raise _RuntimeError("blocked by sandbox: " + event)
            return
        tid = _ident()
        if tid in busy:
            return
        busy.add(tid)
        try:
            if event in _BLOCKED_EVENTS:
                raise _RuntimeError("blocked by sandbox: " + event)
            if event == "gift.rec":
                if key is None:
                    return
                body = args[0] if _len(args) == 1 else None
                f = _getframe(1)
                ok = (_type(body) is _str and f.f_code is runner_code and not st["bad"])
                if ok:
                    tag = body[:2]
                    if st["phase"] == 0:
                        ok = tag == "C "
                        st["phase"] = 2 if body.startswith("C err") else 1
                    elif st["phase"] == 1:
                        if body == "E":
                            st["phase"] = 3
                        else:
                            ok = body.startswith("T " + _str(st["next"]) + " ")
                            st["next"] += 1
                    elif st["phase"] == 2:
                        ok = body == "E"
                        st["phase"] = 3
                    else:
                        ok = False
                if not ok:
                    if not st["bad"]:
                        st["bad"] = True
                        _emit("X tamper")
                    return
                _emit(body)
                return
            if event == "open":
                p = args[0]
                tp = _type(p)
                if tp is _int:
                    return
                if tp is _bytes:
                    p = p.decode("utf-8", "replace")
                elif tp is not _str:
                    raise _RuntimeError("blocked by sandbox: open() of a non-str path")
                if ("proc" in p or "/dev/" in p) and _denied(p):
                    raise _RuntimeError("blocked by sandbox: open " + p)
                return
            if event == "import":
                name = args[0]
                if _type(name) is not _str:
                    raise _RuntimeError("blocked by sandbox: import")
                root = name.partition(".")[0]
                if root in _BLOCKED_IMPORTS:
                    raise _RuntimeError("blocked by sandbox: import " + name)
                return
            if event == "exec" or event == "function.__new__":
                if args and args[0] in protected:
                    raise _RuntimeError("blocked by sandbox: " + event)
                return
            if event == "object.__getattr__":
                if _len(args) == 2 and args[1] == "tb_frame":
                    fr = args[0].tb_frame
                    if fr.f_code is hook_code:
                        raise _RuntimeError("blocked by sandbox: tb_frame")
                return
        finally:
            busy.discard(tid)

    hook_code = hook.__code__
    protected = tuple(protected) + (hook_code, _emit.__code__, _denied.__code__)
    sys.addaudithook(hook)


def _neuter_signals():
    """Remove the obvious route to Python-level signal handlers (they get frames)."""
    sm = sys.modules.get("signal")
    if sm is not None:
        def _no_signal(*a, **k):
            raise RuntimeError("blocked by sandbox: signal.signal")
        sm.signal = _no_signal
        sm.__dict__.pop("_signal", None)
    sys.modules.pop("_signal", None)
    sp = sys.modules.get("subprocess")
    if sp is not None:
        sp.__dict__.pop("_posixsubprocess", None)
    for m in ("_posixsubprocess", "ctypes", "_ctypes"):
        sys.modules.pop(m, None)


# ------------------------------------------------------------------ serialisation
def _ser(x, _type=type, _list=list, _tuple=tuple, _dict=dict, _set=set, _fs=frozenset,
         _int=int, _float=float, _bool=bool, _str=str, _none=type(None), _len=len,
         _irepr=int.__repr__, _frepr=float.__repr__, _sorted=sorted):
    """Strictly serialise a return value built from builtin types only.

    Never calls a method that user code could override: only exact builtin
    types are accepted and only their C-level methods are used.  numpy arrays
    and scalars of *exact* numpy types are converted via numpy's C methods.
    Output: JSON text of tagged values, decoded by gift.execute.
    """
    out = []
    budget = [8 << 20]

    def enc(v, depth):
        if depth > 60:
            raise ValueError("return value nested too deeply")
        t = _type(v)
        if t is _none:
            out.append('["n"]')
        elif t is _bool:
            out.append('["b",1]' if v else '["b",0]')
        elif t is _int:
            out.append('["i","' + _irepr(v) + '"]')
        elif t is _float:
            out.append('["f","' + _frepr(v) + '"]')
        elif t is _str:
            h = v.encode("utf-8", "surrogatepass").hex()
            budget[0] -= _len(h)
            out.append('["s","' + h + '"]')
        elif t is _list or t is _tuple or t is _set or t is _fs:
            tag = "l" if t is _list else "t" if t is _tuple else "S"
            out.append('["' + tag + '",[')
            first = True
            for e in (v if tag != "S" else _list(v)):
                if not first:
                    out.append(",")
                first = False
                enc(e, depth + 1)
            out.append("]]")
        elif t is _dict:
            out.append('["d",[')
            first = True
            for k, e in _dict.items(v):
                if not first:
                    out.append(",")
                first = False
                out.append("[")
                enc(k, depth + 1)
                out.append(",")
                enc(e, depth + 1)
                out.append("]")
            out.append("]]")
        elif _NP is not None and t is _NP[0]:
            enc(_NP[1](v), depth + 1)
        elif _NP is not None and t in _NP[2]:
            enc(_NP[3](v), depth + 1)
        else:
            raise TypeError("unsupported return type " + type.__dict__["__name__"].__get__(t))
        budget[0] -= 8
        if budget[0] < 0:
            raise ValueError("return value too large")

    enc(x, 0)
    return "".join(out)


_NP = None


def _init_numpy():
    global _NP
    np = sys.modules.get("numpy")
    if np is None:
        return
    scal = set()
    for name in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64", "longlong", "ulonglong",
                 "intc", "uintc", "str_", "bytes_"):
        t = getattr(np, name, None)
        if isinstance(t, type):
            scal.add(t)
    _NP = (np.ndarray, np.ndarray.tolist, frozenset(scal), np.generic.item, np.ndarray.dtype.__get__)


# ------------------------------------------------- evalplus format (values + oracle)
# Strict, lossless value encoding used by the ``evalplus`` format for inputs, expected
# outputs and candidate return values.  JSON with these rules: null/true/false, ints
# (decimal; hex tag beyond 4000 digits), finite floats (repr), strings and lists map to
# themselves; every JSON *object* is a tag {"$": tag, ...}:
#   t tuple, s set, fs frozenset, d dict ([[k, v], ...]), c complex ([re, im]),
#   f non-finite float ("nan"/"inf"/"-inf"), i big int (hex), b bytes / ba bytearray (hex),
#   Counter / OrderedDict / defaultdict (like d), deque (like a list), nt tuple subclass
#   (namedtuple; "n" its name), np numpy scalar ("dt" dtype, "v"), nd numpy array ("dt",
#   "v" nested list), obj anything else (opaque: "n" type name; equal to nothing).
# The encoder only accepts exact types and uses C-level methods of the builtin types
# (never a method a candidate can override); its text has no spaces or newlines.

def _mk_ser_plus():
    from json.encoder import encode_basestring_ascii as _esc
    import collections as _col
    _type, _list, _tuple, _dict, _set, _fs, _int, _float, _bool, _str = (
        type, list, tuple, dict, set, frozenset, int, float, bool, str)
    _none, _complex, _bytes, _bytearray, _len, _range = type(None), complex, bytes, bytearray, len, range
    _irepr, _frepr, _issub = int.__repr__, float.__repr__, issubclass
    _tget, _tlen, _ditems, _lget, _llen = tuple.__getitem__, tuple.__len__, dict.items, list.__getitem__, list.__len__
    _bhex, _isfinite = bytes.hex, __import__("math").isfinite
    _tname = type.__dict__["__name__"].__get__
    _special = {_col.Counter: "Counter", _col.OrderedDict: "OrderedDict", _col.defaultdict: "defaultdict"}
    _deque = _col.deque

    def ser(x, cap=16 << 20):
        out = []
        budget = [cap]

        def s(v):
            r = _esc(v)
            budget[0] -= _len(r)
            return r.replace(" ", "\\u0020")

        def flt(v):
            if _isfinite(v):
                return _frepr(v)
            return '{"$":"f","v":"' + _frepr(v) + '"}'

        def seq(it, depth):
            first = True
            for e in it:
                if not first:
                    out.append(",")
                first = False
                enc(e, depth + 1)

        def enc(v, depth):
            if depth > 100:
                raise ValueError("return value nested too deeply")
            budget[0] -= 4
            if budget[0] < 0:
                raise ValueError("return value too large")
            t = _type(v)
            if t is _none:
                out.append("null")
            elif t is _bool:
                out.append("true" if v else "false")
            elif t is _int:
                try:
                    r = _irepr(v)
                except ValueError:
                    r = None
                if r is None or _len(r) > 4000:
                    h = int.__format__(v, "x")
                    budget[0] -= _len(h)
                    out.append('{"$":"i","v":"' + h + '"}')
                else:
                    budget[0] -= _len(r)
                    out.append(r)
            elif t is _float:
                out.append(flt(v))
            elif t is _str:
                out.append(s(v))
            elif t is _list:
                out.append("[")
                seq((_lget(v, i) for i in _range(_llen(v))), depth)
                out.append("]")
            elif t is _tuple:
                out.append('{"$":"t","v":[')
                seq((_tget(v, i) for i in _range(_tlen(v))), depth)
                out.append("]}")
            elif t is _set or t is _fs:
                out.append('{"$":"s","v":[' if t is _set else '{"$":"fs","v":[')
                seq(_list(v) if t is _set else _list(v), depth)
                out.append("]}")
            elif t is _dict or t in _special:
                out.append('{"$":"' + ("d" if t is _dict else _special[t]) + '","v":[')
                first = True
                for k, e in _ditems(v):
                    if not first:
                        out.append(",")
                    first = False
                    out.append("[")
                    enc(k, depth + 1)
                    out.append(",")
                    enc(e, depth + 1)
                    out.append("]")
                out.append("]}")
            elif t is _complex:
                out.append('{"$":"c","v":[' + flt(complex.real.__get__(v)) + "," + flt(complex.imag.__get__(v)) + "]}")
            elif t is _bytes or t is _bytearray:
                h = _bhex(_bytes(v)) if t is _bytearray else _bhex(v)
                budget[0] -= _len(h)
                out.append('{"$":"' + ("b" if t is _bytes else "ba") + '","v":"' + h + '"}')
            elif t is _deque:
                out.append('{"$":"deque","v":[')
                seq(_list(v), depth)
                out.append("]}")
            elif _issub(t, _tuple) and "_fields" in t.__dict__ and _type(t.__dict__["_fields"]) is _tuple:
                out.append('{"$":"nt","n":' + s(_tname(t)) + ',"v":[')
                seq((_tget(v, i) for i in _range(_tlen(v))), depth)
                out.append("]}")
            elif _NP is not None and t is _NP[0]:
                out.append('{"$":"nd","dt":' + s(_NP[4](v).str) + ',"v":')
                enc(_NP[1](v), depth + 1)
                out.append("}")
            elif _NP is not None and t in _NP[2]:
                out.append('{"$":"np","dt":' + s(_tname(t)) + ',"v":')
                enc(_NP[3](v), depth + 1)
                out.append("}")
            else:
                out.append('{"$":"obj","n":' + s(_tname(t)) + "}")

        enc(x, 0)
        return "".join(out)

    return ser


_ser_plus = _mk_ser_plus()


class PlusOpaque(object):
    """A return value of a type the encoding does not carry: equal only to itself."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "<%s object>" % self.name


class PlusTupleSub(tuple):
    """A decoded tuple subclass (namedtuple): tuple equality, its own type."""
    __slots__ = ()


def dec_plus(j, np=None):
    """Decode a JSON-parsed value of the encoding above into Python objects.
    numpy tags need ``np`` (else they decode to an opaque object)."""
    t = type(j)
    if t is list:
        return [dec_plus(e, np) for e in j]
    if t is not dict:
        return j
    tag = j.get("$")
    v = j.get("v")
    if tag == "t":
        return tuple(dec_plus(e, np) for e in v)
    if tag == "s":
        return set(dec_plus(e, np) for e in v)
    if tag == "fs":
        return frozenset(dec_plus(e, np) for e in v)
    if tag in ("d", "Counter", "OrderedDict", "defaultdict"):
        items = [(dec_plus(k, np), dec_plus(e, np)) for k, e in v]
        if tag == "d":
            return dict(items)
        if tag == "defaultdict":
            return collections.defaultdict(None, items)
        return getattr(collections, tag)(dict(items)) if tag == "Counter" else collections.OrderedDict(items)
    if tag == "c":
        return complex(dec_plus(v[0], np), dec_plus(v[1], np))
    if tag == "f":
        return float(v)
    if tag == "i":
        return int(v, 16)
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "ba":
        return bytearray.fromhex(v)
    if tag == "deque":
        return collections.deque(dec_plus(e, np) for e in v)
    if tag == "nt":
        return PlusTupleSub(dec_plus(e, np) for e in v)
    if tag == "np":
        if np is None:
            return PlusOpaque(str(j.get("dt")))
        return getattr(np, j["dt"])(dec_plus(v, np))
    if tag == "nd":
        if np is None:
            return PlusOpaque("ndarray")
        return np.array(dec_plus(v, np), dtype=np.dtype(j["dt"]))
    if tag == "obj":
        return PlusOpaque(str(j.get("n")))
    raise ValueError("bad value tag %r" % (tag,))


# EvalPlus 0.3.1 (Apache-2.0) special oracles, evalplus/eval/_special_oracle.py
PLUS_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
PLUS_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
               "larg_nnum", "intersection_array", "find_dissimilar", "Diff")


def _surface_Area(base_edge, height):
    import math
    slant_height = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_nums(num1, num2):
    a, b = str(num1), str(num2)
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    return sum(abs(int(x) - int(y)) for x, y in zip(a, b))


def _poly(xs, x):
    import math
    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])


class PlusNeedNumpy(Exception):
    pass


def plus_is_floats(x, np=None):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    if np is not None and isinstance(x, np.ndarray):
        return x.dtype == np.float64 or x.dtype == np.float32
    return False


def plus_compare(out, exp, atol, entry_point, dataset, inp, np=None):
    """One input's check, exactly as EvalPlus 0.3.1 ``unsafe_execute`` does it, on trusted
    (decoded) values.  -> (passed, atol for the next input of the same split): EvalPlus
    raises ``atol`` to 1e-6 for good once an expected value is a float (list).
    ``find_zero`` (HumanEval/32): passes when |poly(xs, out)| <= atol (the intended oracle;
    EvalPlus 0.3.1's ``continue`` there skips recording the input, which fails the task).
    Raises PlusNeedNumpy when the tolerance rule is reached and ``np`` is None."""
    try:
        exact_match = out == exp
        if dataset == "mbpp":
            if "are_equivalent" == entry_point:
                exact_match = exact_match or True
            elif "sum_div" == entry_point:
                exact_match = exact_match or out == 0
            elif "surface_Area" == entry_point:
                exact_match = exact_match or abs(out - _surface_Area(*inp)) <= atol
            elif "digit_distance_nums" == entry_point:
                exact_match = exact_match or out == _digit_distance_nums(*inp)
            elif entry_point in PLUS_SET_EQ:
                exact_match = set(out) == set(exp)
            elif entry_point in PLUS_NOT_NONE:
                if isinstance(out, bool):
                    exact_match = out == exp
                else:
                    exact_match = exp == (out is not None)
        if dataset == "humaneval" and "find_zero" == entry_point:
            return bool(abs(_poly(*inp, out)) <= atol), atol
        if atol == 0 and plus_is_floats(exp, np):
            atol = 1e-6
        if not exact_match and atol != 0:
            if type(out) != type(exp):
                return False, atol
            if isinstance(exp, (list, tuple)) and len(out) != len(exp):
                return False, atol
            if np is None:
                raise PlusNeedNumpy()
            return bool(np.allclose(out, exp, rtol=1e-07, atol=atol)), atol
        return bool(exact_match), atol
    except PlusNeedNumpy:
        raise
    except BaseException:
        return False, atol


def _plus_hint(payload, i, req, st):
    """Child-side early stop (EvalPlus stops at the first failing input): False only if the
    comparison cleanly says the output is wrong.  Advisory: the parent decides."""
    try:
        exps, cmp = req.get("expected") or (), req.get("cmp") or {}
        if i >= len(exps) or exps[i] is None:
            return True
        g = (cmp.get("group") or ())[i] if i < len(cmp.get("group") or ()) else 0
        if st.get("g") != g:
            st["g"], st["atol"] = g, float((cmp.get("atol") or [0.0] * (i + 1))[i])
        if payload == exps[i] and (st["atol"] != 0 or payload[:1] in ("t", "n", '"') or not (
                "." in payload or "e" in payload or "E" in payload or '"f"' in payload)):
            return True  # same encoding, and the sticky atol cannot change here
        np = sys.modules.get("numpy")
        out = dec_plus(json.loads(payload), np)
        exp = dec_plus(json.loads(exps[i]), np)
        inp = ()
        if cmp.get("needs_input"):
            inp = dec_plus(json.loads(req["inputs"][i]), np)
        ok, st["atol"] = plus_compare(out, exp, st["atol"], cmp.get("entry_point"), cmp.get("dataset"), inp, np)
        return ok
    except BaseException:
        return True


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


def _runner(req, tests, calls,
            _audit=sys.audit, _exec=exec, _BaseException=BaseException, _str=str,
            _enumerate=enumerate, _ser=_ser, _exc_info=_exc_info, _getattr=getattr,
            _isinstance=isinstance, _type=type, _len=len, _dict=dict,
            _setitimer=signal.setitimer, _ITIMER_PROF=signal.ITIMER_PROF, _ptime=time.process_time,
            _perf=time.perf_counter, _frepr=float.__repr__, _ser_plus=_ser_plus, _plus_hint=_plus_hint):
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
                payload = _ser(res)
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
    mac = lambda line: hashlib.blake2b(line.encode(), key=bytes(key), digest_size=16).hexdigest()
    seq = [0]

    def emit(body):
        line = "%d %s" % (seq[0], body)
        seq[0] += 1
        data = (line + " " + mac(line) + "\n").encode()
        while data:
            data = data[os.write(fd, data):]

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
            data = data[os.write(infd, data):]
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
                sys.stdin = open(0, "r", closefd=False)
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
            kind = "signal%d" % os.WTERMSIG(status)
        else:
            kind = {0: "ok", 2: "exit", 3: "memory", 4: "exc"}.get(os.WEXITSTATUS(status), "exc")
        if total > cap:
            kind = "toolong" if kind == "ok" else kind
        emit("T %d %s %s" % (i, kind, b"".join(buf).hex()))
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


# ------------------------------------------------------------------------ server
class _Cand:
    """One running candidate (child C) of the server."""
    __slots__ = ("i", "req", "pid", "pidfd", "rfd", "buf", "overflow", "t0", "deadline", "hard",
                 "tmp", "slot", "uid", "status", "rec_open", "exit_t", "timed_out", "cpu",
                 "sample_t", "idle")


class Server:
    """Event-driven fork server.

    Requests arrive as JSON lines on stdin (each carries an ``i`` that is echoed
    back) and are queued; up to ``slots`` candidates run at the same time, but a
    new one is only started while every running one was measured *blocked*
    (less than ``IDLE_FRAC`` of a core over the last sample, RSS under
    ``IDLE_RSS``), so at most one CPU-bound candidate per server runs at any
    time.  Wall-clock timeouts discount the time the candidate spent waiting
    for a CPU (run-queue delay from /proc/<pid>/schedstat)."""

    SAMPLE_S = 0.02
    IDLE_FRAC = 0.05
    IDLE_RSS = 1 << 30
    LONG_S = 0.25  # a candidate busy for longer than this no longer holds back the next one

    def __init__(self):
        self.pid1 = os.getpid() == 1
        try:  # only sweep /proc if it is this pid namespace's own proc mount
            self.own_proc = self.pid1 and os.readlink("/proc/self") == "1"
        except OSError:
            self.own_proc = False
        # (not tempfile, which imports random: a loaded random module reseeds itself from
        # os.urandom in every forked child, ~45 more page faults per candidate)
        self.base = os.path.join(os.environ.get("TMPDIR") or "/tmp", "gift-sbx-" + os.urandom(8).hex())
        os.mkdir(self.base, 0o700)
        os.chmod(self.base, 0o711)
        self.uid = 0
        want = os.environ.get("GIFT_SANDBOX_UID", "auto")
        if os.geteuid() == 0 and want != "0":
            cand = 200000 + int.from_bytes(os.urandom(4), "little") % (2_000_000_000 - 200000)
            if self._uid_works(cand):
                self.uid = cand
        self.private_tmp = os.environ.get("GIFT_SANDBOX_PRIVATE_TMP") == "1"
        try:
            with open("/proc/self/schedstat") as f:
                self.schedstat = len(f.read().split()) >= 2
        except OSError:
            self.schedstat = False
        # concurrency needs: CPU measurement, and a uid per slot so that concurrent
        # candidates cannot touch each other and strays can be attributed
        slots = 4 if (self.schedstat and self.uid) else 1
        try:
            slots = int(os.environ.get("GIFT_SANDBOX_SLOTS", slots))
        except ValueError:
            pass
        if not (self.schedstat and self.uid):
            slots = 1
        self.slots = max(1, min(slots, 64))
        self.free_slots = list(range(self.slots))
        self.running = {}  # pid -> _Cand
        self.pending = collections.deque()
        self.seq = 0
        self.code_cache = {}
        self.input_cache = {}
        self.input_cache_chars = 0

    def _uid_works(self, uid):
        """Can a child running as ``uid`` still read the interpreter and libraries?"""
        import site
        paths = [os.path.dirname(os.__file__)] + list(site.getsitepackages())
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                for p in paths:
                    if os.path.isdir(p):
                        os.listdir(p)
                os.listdir(os.path.join(os.path.dirname(os.__file__), "encodings"))
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        return os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0

    def hello(self):
        net = "unknown"
        try:
            with open("/proc/net/dev") as f:
                ifs = [l.split(":")[0].strip() for l in f.readlines()[2:]]
            net = "isolated" if all(i == "lo" for i in ifs) else "shared"
        except OSError:
            pass
        return {"ready": True, "pid1": self.pid1, "own_proc": self.own_proc, "uid": self.uid, "net": net,
                "private_tmp": self.private_tmp, "numpy": "numpy" in sys.modules,
                "pandas": "pandas" in sys.modules, "python": sys.version.split()[0],
                "slots": self.slots, "schedstat": self.schedstat,
                "preimported": sorted(set(_LOADED))}

    # ------------------------------------------------------------ compile cache
    def _compile_tests(self, req):
        """Test code objects, compiled once per distinct source in the server (the
        same tests recur for every sample of a task) and inherited by the fork."""
        out = []
        cache = self.code_cache
        if len(cache) > 20000:
            cache.clear()
        for i, src in enumerate(req.get("tests") or []):
            k = (i, src)
            c = cache.get(k)
            if c is None:
                try:
                    c = compile(src, "<test %d>" % i, "exec")
                except BaseException as e:
                    c = "test does not compile: %s" % type(e).__name__
                cache[k] = c
            out.append(c)
        return out

    def _decode_inputs(self, req):
        """evalplus format: argument lists decoded once per distinct input text (the
        same inputs recur for every sample of a task), inherited by the fork.  A bad
        input becomes an empty argument list (the call then fails)."""
        out = []
        cache = self.input_cache
        if self.input_cache_chars > (256 << 20):
            cache.clear()
            self.input_cache_chars = 0
        for src in req.get("inputs") or []:
            v = cache.get(src)
            if v is None:
                try:
                    v = dec_plus(json.loads(src))
                    v = tuple(v) if type(v) is list else ()
                except BaseException:
                    v = ()
                cache[src] = v
                self.input_cache_chars += len(src)
            out.append(v)
        return out

    # ------------------------------------------------------------ start/finish
    def _start(self, req):
        c = _Cand()
        c.i = req.get("i")
        c.req = req
        c.t0 = time.monotonic()
        timeout = float(req.get("timeout", 10.0))
        c.deadline = c.t0 + timeout
        c.hard = c.t0 + 4 * timeout + 1.0  # >= 1/4 core: 2 servers per core, <= 2 busy candidates each
        c.slot = self.free_slots.pop()
        c.uid = self.uid + c.slot if self.uid else 0
        self.seq += 1
        c.tmp = os.path.join(self.base, "c%d" % self.seq)
        os.mkdir(c.tmp, 0o700)
        if c.uid:
            os.chown(c.tmp, c.uid, c.uid)
        tests = self._compile_tests(req) if req.get("mode") in ("assert", "humaneval") else None
        if req.get("mode") == "plus":
            tests = self._decode_inputs(req)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                _child(req, c.tmp, wfd, c.uid, tests)
            finally:
                os._exit(0)
        os.close(wfd)
        os.set_blocking(rfd, False)
        c.pid, c.rfd = pid, rfd
        c.buf = bytearray()
        c.overflow = False
        c.status = None
        c.rec_open = True
        c.exit_t = None
        c.timed_out = False
        c.cpu = 0
        c.sample_t = c.t0
        c.idle = False
        try:
            c.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            c.pidfd = None
        self.sel.register(rfd, selectors.EVENT_READ, ("rec", c))
        if c.pidfd is not None:
            self.sel.register(c.pidfd, selectors.EVENT_READ, ("pid", c))
        self.running[pid] = c

    def _reap(self, c, block=False):
        """Kill the candidate's session (while its pid is still reserved: before
        reaping) and collect the exit status."""
        if c.status is not None:
            return
        if not block:
            try:
                info = os.waitid(os.P_PID, c.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
            if info is None:
                return
        try:
            os.killpg(c.pid, signal.SIGKILL)
        except OSError:
            pass
        if block:
            try:
                os.kill(c.pid, signal.SIGKILL)
            except OSError:
                pass
        _, c.status = os.waitpid(c.pid, 0)
        c.exit_t = time.monotonic()
        if c.pidfd is not None:
            try:
                self.sel.unregister(c.pidfd)
            except (KeyError, ValueError):
                pass
            os.close(c.pidfd)
            c.pidfd = None
        self._sweep(c)

    def _read_rec(self, c):
        while True:
            try:
                data = os.read(c.rfd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.sel.unregister(c.rfd)
                c.rec_open = False
                return
            if len(c.buf) < RECORD_CAP:
                c.buf += data
            else:
                c.overflow = True

    def _finish(self, c):
        now = time.monotonic()
        if c.status is None:
            self._reap(c, block=True)
        if c.rec_open:
            self._read_rec(c)
            if c.rec_open:
                self.sel.unregister(c.rfd)
        os.close(c.rfd)
        del self.running[c.pid]
        self.free_slots.append(c.slot)
        tmp = c.tmp
        try:
            os.rmdir(tmp)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if os.path.exists(tmp):  # e.g. chmod 000 subdirs left by the candidate
                for root, dirs, _ in os.walk(tmp):
                    for d in dirs:
                        try:
                            os.chmod(os.path.join(root, d), 0o700)
                        except OSError:
                            pass
                shutil.rmtree(tmp, ignore_errors=True)
        end = c.exit_t if c.exit_t is not None and not c.timed_out else now
        out = {"i": c.i, "duration": min(end, now) - c.t0, "timed_out": c.timed_out,
               "overflow": c.overflow}
        st = c.status
        if os.WIFSIGNALED(st):
            out["signal"] = os.WTERMSIG(st)
        else:
            out["exit"] = os.WEXITSTATUS(st)
        out.update(_verify(bytes(c.buf)))
        self._send(out)

    def _send(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(1, data):]

    # ------------------------------------------------------------ sweeping
    def _sweep(self, c):
        """Kill every process the finished candidate may have left behind."""
        me = os.getpid()
        if self.own_proc and (self.slots == 1 or not self.uid):
            for _ in range(3):  # nothing else runs: everything but us is a stray
                found = False
                for n in os.listdir("/proc"):
                    if n.isdigit() and int(n) not in (1, me):
                        found = True
                        try:
                            os.kill(int(n), signal.SIGKILL)
                        except OSError:
                            pass
                if not found:
                    break
                time.sleep(0.001)
            self._reap_orphans()
        elif self.own_proc:
            # other candidates run concurrently: strays are recognised by the uid of
            # the finished candidate's slot (a candidate cannot change its uid)
            for _ in range(3):
                found = False
                for n in os.listdir("/proc"):
                    if not n.isdigit():
                        continue
                    p = int(n)
                    if p in (1, me) or p in self.running:
                        continue
                    try:
                        with open("/proc/%d/status" % p, "rb") as f:
                            uid_line = [l for l in f.read().split(b"\n") if l.startswith(b"Uid:")]
                        puid = int(uid_line[0].split()[1])
                    except (OSError, IndexError, ValueError):
                        continue
                    if puid == c.uid:
                        found = True
                        try:
                            os.kill(p, signal.SIGKILL)
                        except OSError:
                            pass
                if not found:
                    break
                time.sleep(0.001)
            self._reap_orphans()
        elif c.uid:
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgid(c.uid)
                    os.setuid(c.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            self._reap_orphans()
        if self.private_tmp and c.uid:
            for d in ("/tmp", "/dev/shm", "/var/tmp"):
                try:
                    names = os.listdir(d)
                except OSError:
                    continue
                for n in names:
                    p = os.path.join(d, n)
                    try:
                        if os.lstat(p).st_uid == c.uid:
                            if stat.S_ISDIR(os.lstat(p).st_mode):
                                shutil.rmtree(p, ignore_errors=True)
                            else:
                                os.unlink(p)
                    except OSError:
                        pass

    def _reap_orphans(self):
        """Reap zombies that are not running candidates (orphans re-parented to PID 1)."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in self.running:
                # a tracked candidate is handled by _reap; look for others explicitly
                break
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
            except ChildProcessError:
                return
        if self.own_proc:
            for n in os.listdir("/proc"):
                if n.isdigit():
                    p = int(n)
                    if p != 1 and p not in self.running:
                        try:
                            os.waitpid(p, os.WNOHANG)
                        except ChildProcessError:
                            pass

    # ------------------------------------------------------------ measurement
    def _tasks(self, c):
        """Thread ids of the candidate and of its child processes (apps_stdio)."""
        out = []
        pids = [c.pid]
        try:
            with open("/proc/%d/task/%d/children" % (c.pid, c.pid)) as f:
                pids += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass
        for p in pids:
            try:
                out += [(p, t) for t in os.listdir("/proc/%d/task" % p)]
            except OSError:
                pass
        return out

    def _sched(self, c):
        """-> (summed on-CPU ns, max run-queue delay ns, rss bytes) over the candidate's tasks."""
        cpu = delay = 0
        for p, t in self._tasks(c):
            try:
                with open("/proc/%d/task/%s/schedstat" % (p, t), "rb") as f:
                    a = f.read().split()
                cpu += int(a[0])
                delay = max(delay, int(a[1]))
            except (OSError, ValueError, IndexError):
                pass
        rss = 0
        try:
            with open("/proc/%d/statm" % c.pid, "rb") as f:
                rss = int(f.read().split()[1]) * 4096
        except (OSError, ValueError, IndexError):
            pass
        return cpu, delay, rss

    def _sample(self, now):
        for c in self.running.values():
            if c.status is not None:
                c.idle = True
                continue
            dt = now - c.sample_t
            if dt < self.SAMPLE_S * 0.9:
                continue
            cpu, _, rss = self._sched(c)
            c.idle = (cpu - c.cpu) < self.IDLE_FRAC * dt * 1e9 and rss < self.IDLE_RSS
            c.cpu, c.sample_t = cpu, now

    def _can_admit(self):
        if not self.pending or not self.free_slots:
            return False
        if not self.running:
            return True
        # at most one CPU-bound candidate is started at a time; one that has been running for
        # LONG_S (a slow or spinning program) no longer holds the queue: one short candidate may
        # share the core with it. It loses no time by this: its deadline is extended by the time
        # it waited for a CPU (_check_deadline), so at most two busy candidates per server
        busy = [c for c in self.running.values() if not c.idle]
        if not busy:
            return True
        return len(busy) == 1 and time.monotonic() - busy[0].t0 >= self.LONG_S

    def _check_deadline(self, c, now):
        """At the wall deadline: extend it by the time the candidate waited for a
        CPU (run-queue delay), up to the hard cap; -> True if it timed out."""
        if now < c.deadline:
            return False
        if self.schedstat and now < c.hard:
            _, delay, _ = self._sched(c)
            timeout = float(c.req.get("timeout", 10.0))
            d = c.t0 + timeout + delay / 1e9
            if d > now + 0.001:
                c.deadline = min(d, c.hard)
                return False
        return True

    # ------------------------------------------------------------ main loop
    def serve(self):
        self.sel = selectors.DefaultSelector()
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ, ("in", None))
        inbuf = bytearray()
        eof = False
        while True:
            while self._can_admit():
                req = self.pending.popleft()
                try:
                    self._start(req)
                except Exception as e:  # never die on one bad request
                    self._send({"i": req.get("i"), "server_error": "%s: %s" % (type(e).__name__, e)})
            if eof and not self.pending and not self.running:
                break
            now = time.monotonic()
            wake = now + 3600.0
            for c in self.running.values():
                wake = min(wake, c.deadline)
                if c.status is not None:
                    wake = min(wake, c.exit_t + 0.2)
                elif c.pidfd is None:
                    wake = min(wake, now + 0.005)
            sampling = bool(self.pending) and self.free_slots and self.running
            if sampling:
                wake = min(wake, min(c.sample_t for c in self.running.values()) + self.SAMPLE_S)
            evs = self.sel.select(max(0.0, wake - now))
            for key, _ in evs:
                kind, c = key.data
                if kind == "in":
                    try:
                        data = os.read(0, 1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        eof = True
                        self.sel.unregister(0)
                        continue
                    inbuf += data
                    while True:
                        j = inbuf.find(b"\n")
                        if j < 0:
                            break
                        line = bytes(inbuf[:j])
                        del inbuf[: j + 1]
                        try:
                            req = json.loads(line)
                        except ValueError as e:
                            self._send({"i": None, "server_error": "bad request: %s" % e})
                            continue
                        if "cancel" in req:  # the caller moves a queued request to an idle server
                            for r in self.pending:
                                if r.get("i") == req["cancel"]:
                                    self.pending.remove(r)
                                    self._send({"i": req["cancel"], "cancelled": True})
                                    break
                            continue  # already started (or done): its result comes as usual
                        self.pending.append(req)
                elif kind == "rec":
                    self._read_rec(c)
                elif kind == "pid":
                    self._reap(c)
            now = time.monotonic()
            for c in list(self.running.values()):
                if c.status is None and c.pidfd is None:
                    self._reap(c)
                if c.status is not None:
                    if not c.rec_open or now >= c.exit_t + 0.2:
                        self._finish(c)  # (a stray still holding the pipe is given up on)
                elif self._check_deadline(c, now):
                    c.timed_out = True
                    self._reap(c, block=True)
                    self._finish(c)
            if self.pending and self.free_slots and self.running:
                self._sample(time.monotonic())


def _verify(raw):
    """Parse the record: first line carries the key, every further line must be
    ``seq body mac`` with consecutive seq and a valid MAC."""
    lines = raw.split(b"\n")
    res = {"events": [], "complete": False, "tampered": False, "has_key": False}
    if not lines or not lines[0].startswith(b"K "):
        return res
    try:
        key = bytes.fromhex(lines[0][2:].decode())
    except ValueError:
        return res
    res["has_key"] = True
    seq = 0
    for ln in lines[1:]:
        if not ln:
            continue
        try:
            s = ln.decode()
            line, mac = s.rsplit(" ", 1)
            n, body = line.split(" ", 1)
        except ValueError:
            res["tampered"] = True
            break
        good = hashlib.blake2b(line.encode(), key=key, digest_size=16).hexdigest()
        if mac != good or n != str(seq):
            res["tampered"] = True
            break
        seq += 1
        if body == "X tamper":
            res["tampered"] = True
            break
        if body == "E":
            res["complete"] = True
            break
        res["events"].append(body)
    return res


def main():
    for m in _PREIMPORT:
        __import__(m)
    asked = os.environ.get("GIFT_SANDBOX_PREIMPORT")
    asked = (_OPTIONAL + ["numpy", "pandas"]) if asked is None else asked.split()
    for m in asked:
        try:
            __import__(m)
        except BaseException:
            continue
        _LOADED.append(m)
    _init_numpy()
    srv = Server()
    os.environ.clear()
    os.environ.update(_BASE_ENV)
    # candidates are forks of this state: numpy.random (not reseeded at fork) is seeded once,
    # so every candidate sees the same sequence on every run (random: seeded in each child)
    if "numpy" in sys.modules:
        try:
            sys.modules["numpy"].random.seed(0)
        except Exception:
            pass
    _own_streams()
    gc.collect()
    gc.freeze()  # children do not touch (copy-on-write) the server's objects when they collect
    sys.stdout.write(json.dumps(srv.hello()) + "\n")
    sys.stdout.flush()
    try:
        srv.serve()
    finally:
        shutil.rmtree(srv.base, ignore_errors=True)


if __name__ == "__main__":
    main()
