"""The value codec, used by the candidate (to report return values) and by the parent (to encode inputs
and decode results): one implementation for both sides and every test format (APPS call results are
read leniently from the same encoding by ``gift.sandbox.compare``)."""

import collections
import sys

# ------------------------------------------------------------------ serialisation
_NP = None


def _init_numpy():
    global _NP
    np = sys.modules.get("numpy")
    if np is None:
        return
    scal = set()
    for name in (
        "bool_",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "longlong",
        "ulonglong",
        "intc",
        "uintc",
        "str_",
        "bytes_",
    ):
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
    import collections as _col
    from json.encoder import encode_basestring_ascii as _esc

    _type, _list, _tuple, _dict, _set, _fs, _int, _float, _bool, _str = (
        type,
        list,
        tuple,
        dict,
        set,
        frozenset,
        int,
        float,
        bool,
        str,
    )
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


class PlusOpaque:
    """A return value of a type the encoding does not carry: equal only to itself."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<{self.name} object>"


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
    raise ValueError(f"bad value tag {tag!r}")
