"""Statuses, formats and the small helpers every verdict uses (a leaf of the package)."""

from __future__ import annotations

from typing import Any

STATUSES = ("passed", "failed", "timeout", "error", "memory", "killed")
FORMATS = ("assert", "humaneval", "apps_call", "apps_stdio", "evalplus")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEM_MB = 4096
_DETAIL_MAX = 300


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


def _exited_unproven(out: dict, raw: dict, code_ev, test_no: int) -> None:
    """The verdict of a child that exited without its final record: it died before the harness started
    (``killed``), or the candidate ended the process itself (``failed``: nothing is proven)."""
    if not raw.get("has_key"):
        out.update(
            status="killed", detail=_clip(f"sandbox child failed before the harness started (exit {raw.get('exit')})")
        )
    else:
        where = "during top-level code" if code_ev is None else f"during test {test_no}"
        out.update(
            status="failed",
            detail=f"candidate exited (code {raw.get('exit')}) {where}; the harness could not prove the tests passed",
        )


def _sig_name(sig: int) -> str:
    import signal as _signal

    return _signal.Signals(sig).name if sig in _signal.Signals._value2member_map_ else str(sig)


def _top_level_error(out: dict, code_ev: list) -> dict:
    """The verdict of a program whose own top-level code failed (``C err <kind> <detail>``)."""
    kind = code_ev[2] if len(code_ev) > 2 else "exc"
    msg = _hexs(code_ev[3]) if len(code_ev) > 3 else ""
    pre = "exited at top level: " if kind == "exit" else "top-level error: "
    out.update(status={"memory": "memory", "exit": "failed"}.get(kind, "error"), detail=_clip(pre + msg))
    return out
