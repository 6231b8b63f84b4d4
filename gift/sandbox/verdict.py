"""Requests from rows (``_prepare``) and verdicts from the server's verified records (``_verdict``):
exit codes and stdout of a candidate prove nothing, only its MAC'd per-test records do."""

from __future__ import annotations

import json
from typing import Any

from .compare import _decode, compare_call_output, compare_stdout
from .plus import _prepare_plus, _verdict_plus
from .records import (
    DEFAULT_MEM_MB,
    DEFAULT_TIMEOUT_S,
    FORMATS,
    _clip,
    _exited_unproven,
    _hexs,
    _short_repr,
    _top_level_error,
)


def _prepare(row: dict, memo: dict | None = None) -> tuple[dict, list, int]:
    """-> (request for the server, expected outputs (apps) , tests_total)."""
    fmt = row.get("format", "assert")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (row {row.get('id')!r})")
    tests = list(row.get("tests") or [])
    timeout = float(row.get("timeout_s") or DEFAULT_TIMEOUT_S)
    req: dict[str, Any] = {
        "code": row.get("code") or "",
        "timeout": timeout,
        "mem": int(float(row.get("mem_mb") or DEFAULT_MEM_MB) * (1 << 20)),
    }
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
        req.update(mode="humaneval", tests=tests[:1], entry_point=row["entry_point"], setup=row.get("setup") or "")
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
            req.update(mode="call", fn_name=row["fn_name"], calls=[json.dumps(p[0] if p else []) for p in parsed])
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


def _verdict(row: dict, fmt: str, expected: list, total: int, raw: dict) -> dict:
    out = {
        "id": row.get("id"),
        "passed": False,
        "status": "failed",
        "tests_passed": 0,
        "tests_total": total,
        "duration_s": round(float(raw.get("duration", 0.0)), 4),
        "detail": "",
    }
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
                why = {"exit": "non-zero exit", "memory": "MemoryError", "exc": "uncaught exception"}.get(kind, kind)
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
        return _top_level_error(out, code_ev)
    if complete and code_ev is not None:
        if total == 0:
            out.update(status="failed", detail="no tests")
        elif passed_n == total and len(results) == total:
            out.update(passed=True, status="passed", detail=f"all {total} tests passed")
        else:
            mem = any(r[1] == "memory" for r in results.values() if not r[0])
            i, kind, why = first_fail if first_fail else (len(results), "missing", "test not run")
            out.update(status="memory" if mem else "failed", detail=_clip(f"test {i}: {why}{test_src(i)}"))
        return out
    # incomplete record: the harness could not prove anything
    sig = raw.get("signal")
    if raw.get("timed_out"):
        out.update(
            status="timeout",
            detail=f"timeout after {float(row.get('timeout_s') or DEFAULT_TIMEOUT_S):g}s"
            + (f" ({passed_n}/{total} tests passed before)" if passed_n else ""),
        )
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
