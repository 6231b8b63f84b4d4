"""The ``evalplus`` format (EvalPlus-style differential tests): rows parsed into requests, and the
parent-side verdict from the recorded return values, input by input (the same codec and oracle code as
the child: ``child.codec``, ``child.oracle``)."""

from __future__ import annotations

import json
import sys
from typing import Any

from .child import codec as _codec
from .child.codec import dec_plus
from .child.oracle import plus_compare
from .records import DEFAULT_TIMEOUT_S, _clip, _exited_unproven, _hexs, _short_repr, _sig_name, _top_level_error


def encode_value(v: Any) -> str:
    """Strict lossless JSON text of a (trusted) value: tuples, sets, complex, big ints,
    non-finite floats, numpy values survive the round trip (see ``decode_value``)."""
    if "numpy" in sys.modules and _codec._NP is None:
        _codec._init_numpy()
    return _codec._ser_plus(v, cap=1 << 40)


def decode_value(text_or_json: Any) -> Any:
    j = json.loads(text_or_json) if isinstance(text_or_json, str) else text_or_json
    return dec_plus(j, _np())


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
        for g, lim in zip(groups, limits, strict=True):
            per[g] = per.get(g, 0.0) + (lim or 1.0)
        req["timeout"] = sum(min(60.0, v) + 1.0 for v in per.values()) if per else DEFAULT_TIMEOUT_S
    req.update(
        mode="plus",
        entry_point=ep,
        setup=row.get("setup") or "",
        inputs=inputs,
        expected=exps,
        limits=limits,
        stop_first=bool(row.get("stop_first", True)),
        cmp={"entry_point": ep, "dataset": dataset, "atol": atols, "group": groups, "needs_input": needs_input},
    )
    expected = [
        {
            "meta": meta,
            "atol": atols,
            "group": groups,
            "dataset": dataset,
            "entry_point": ep,
            "needs_input": needs_input,
            "limits": limits,
            "timeout": req["timeout"],
            "dec": {},
        }
    ]
    return req, expected, len(tests)


def _parse_plus_tests(row: dict, tests: list, dataset: str, ep: str) -> tuple:
    inputs, exps, limits, atols, groups, meta = [], [], [], [], [], []
    for t in tests:
        d = json.loads(t) if isinstance(t, str) else t
        if not isinstance(d, dict) or "input" not in d or not isinstance(d["input"], list):
            raise ValueError(f'evalplus row {row.get("id")!r}: a test needs an "input" list')
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
        dataset == "humaneval" and ep == "find_zero"
    )
    return inputs, exps, limits, atols, groups, meta, needs_input


def _verdict_plus(row: dict, info: dict, total: int, raw: dict, out: dict) -> dict:
    """Parent-side EvalPlus comparison of the recorded return values, input by input in
    order, stopping at the first failure (EvalPlus's default ``fast_check``)."""
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
            got = dec_plus(json.loads(payload), np)
            dc = _PLUS_DEC.get(id(meta))
            if dc is None or dc[0] is not meta:
                if len(_PLUS_DEC) > 4096:
                    _PLUS_DEC.clear()
                dc = _PLUS_DEC[id(meta)] = (meta, {})
            if i not in dc[1]:
                dc[1][i] = (dec_plus(exp, np), dec_plus(inp, np) if info["needs_input"] else ())
            expv, inpv = dc[1][i]
            ok, st["atol"] = plus_compare(got, expv, st["atol"], ep, dataset, inpv, np)
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
    out["groups"] = [
        {"passed": g_pass[g] == g_total[g] and g_total[g] > 0, "tests_passed": g_pass[g], "tests_total": g_total[g]}
        for g in range(ng)
    ]
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
        return _top_level_error(out, code_ev)
    if first_fail is not None:
        fail_all_after = first_fail[0]
        for gg, gi in zip(out["groups"], range(ng), strict=False):  # the first ng groups only
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
        out.update(
            status="timeout",
            detail=_clip(
                f"test {seen}: time limit exceeded ({lim:g}s CPU)"
                if lim and _sig_name(sig) == "SIGPROF"
                else "CPU time limit exceeded"
            )
            + inp_src(seen),
        )
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
