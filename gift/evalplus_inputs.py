"""MBPP+ inputs the EvalPlus way: JSON lists converted back to tuples, sets and complex numbers
(:func:`deserialize_inputs`), then encoded as the sandbox's value codec reads them (:func:`enc_inputs`)."""

from __future__ import annotations

import json
import math
from typing import Any

from .sandbox import encode_value

__all__ = ["deserialize_inputs", "enc_inputs"]


def _tuple_all(inp):
    if isinstance(inp, list):
        return tuple(_tuple_all(x) for x in inp)
    return inp


def deserialize_inputs(task_id: str, inputs: list) -> list:
    """EvalPlus 0.3.1 ``evalplus.data.mbpp.mbpp_deserialize_inputs`` (Apache-2.0), verbatim
    semantics: JSON lists back to tuples / sets / complex for the tasks that take them.
    Non-MBPP task ids are returned unchanged (EvalPlus does not convert HumanEval+ inputs)."""
    if not str(task_id).startswith("Mbpp/"):
        return inputs
    n = int(str(task_id).split("/")[-1])
    if n in (
        2,
        116,
        132,
        143,
        222,
        261,
        273,
        394,
        399,
        421,
        424,
        429,
        470,
        560,
        579,
        596,
        616,
        630,
        726,
        740,
        744,
        809,
    ):
        return [[tuple(lst) for lst in inp] for inp in inputs]
    if n in (63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780):
        return [[[tuple(lst) for lst in lst_lst] for lst_lst in inp] for inp in inputs]
    if n in (75, 413, 444, 753):
        return [[[tuple(lst) for lst in inp[0]]] + [inp[1]] for inp in inputs]
    if n in (106, 750):
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if n == 115:
        return [[[set(item) if isinstance(item, list) and len(item) else {} for item in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in (250, 405, 446, 617, 720, 763, 808):
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if n in (259, 401, 445):
        mod = [[[tuple(lst) for lst in lst_lst] for lst_lst in inp] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in mod]
    if n == 278:
        mod = [[[tuple(item) if isinstance(item, list) else item for item in inp[0]]] for inp in inputs]
        return [[tuple(lst) for lst in inp] for inp in mod]
    if n == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{key: tuple(value) for key, value in inp[0].items()}] + inp[1:] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in (580, 615, 791):
        return [_tuple_all(inp) for inp in inputs]
    return inputs


_BIG = 10**3000


def _to_json(v: Any) -> Any:
    """The value encoding of gift/sandbox/child/codec.py as a JSON structure (fast path for the
    trusted input types; anything else goes through the strict encoder)."""
    t = type(v)
    if t is list:
        return [_to_json(x) for x in v]
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return v if -_BIG < v < _BIG else json.loads(encode_value(v))
    if t is float:
        return v if math.isfinite(v) else json.loads(encode_value(v))
    if t is tuple:
        return {"$": "t", "v": [_to_json(x) for x in v]}
    if t is set or t is frozenset:
        return {"$": "s" if t is set else "fs", "v": [_to_json(x) for x in v]}
    if t is dict:
        return {"$": "d", "v": [[_to_json(k), _to_json(x)] for k, x in v.items()]}
    if t is complex:
        return {"$": "c", "v": [_to_json(v.real), _to_json(v.imag)]}
    return json.loads(encode_value(v))


def enc_inputs(problem: dict, which: str) -> list:
    """Encoded argument lists (JSON values) of ``base_input`` / ``plus_input``."""
    raw = problem.get(which) or []
    return [_to_json(list(args)) for args in deserialize_inputs(problem["task_id"], raw)]
