"""EvalPlus 0.3.1's comparison of one output, on trusted (decoded) values; the child's advisory early
stop uses it, the parent's verdict decides."""

import json
import sys

from .codec import dec_plus

# EvalPlus 0.3.1 (Apache-2.0) special oracles, evalplus/eval/_special_oracle.py
PLUS_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
PLUS_SET_EQ = (
    "similar_elements",
    "find_char_long",
    "common_in_nested_lists",
    "extract_singly",
    "larg_nnum",
    "intersection_array",
    "find_dissimilar",
    "Diff",
)


def _surface_Area(base_edge, height):
    import math

    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_nums(num1, num2):
    a, b = str(num1), str(num2)
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    return sum(abs(int(x) - int(y)) for x, y in zip(a, b, strict=True))


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
            if type(out) is not type(exp):
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
        if payload == exps[i] and (
            st["atol"] != 0
            or payload[:1] in ("t", "n", '"')
            or not ("." in payload or "e" in payload or "E" in payload or '"f"' in payload)
        ):
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
