"""APPS-style output comparison of trusted (decoded) values: call results and stdout."""

from __future__ import annotations

import math
from typing import Any

_RTOL, _ATOL = 1e-5, 1e-8


class _Opaque:
    """A value the APPS comparison does not take (complex, bytes, Counter, deque, namedtuple, objects of
    other classes): equal to nothing."""

    def __init__(self, tag):
        self.tag = tag

    def __repr__(self):
        return f"<{self.tag} value>"


def _decode(j: Any) -> Any:
    """The APPS view of a JSON-parsed value of the strict encoding (``child.codec``): tuples as lists,
    sets as frozensets, numpy arrays and scalars as their ``tolist()`` / ``item()``; exact builtin types
    only, anything else opaque."""
    t = type(j)
    if t is list:
        return [_decode(e) for e in j]
    if t is not dict:
        return j  # None, bool, int, float, str
    tag, v = j.get("$"), j.get("v")
    if tag == "t":
        return [_decode(e) for e in v]  # tuples compare equal to lists (APPS rule)
    if tag in ("s", "fs"):
        return frozenset(_hashable(_decode(e)) for e in v)
    if tag == "d":
        return {_hashable(_decode(k)): _decode(e) for k, e in v}
    if tag == "f":
        return float(v)
    if tag == "i":
        return int(v, 16)
    if tag in ("nd", "np"):
        return _decode(v)
    if tag is None:
        raise ValueError("not a value of the strict encoding")
    return _Opaque(tag)


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
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
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
    for gl, el in zip(g, e, strict=True):
        if len(gl) != len(el):
            return False
        for x, y in zip(gl, el, strict=True):
            if x == y:
                continue
            if _is_float(x) and _is_float(y) and _num_close(float(x), float(y)):
                continue
            return False
    return True
