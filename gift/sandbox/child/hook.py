"""The audit hook every candidate runs under: blocked events and imports, and the MAC'd record of
verdicts (``gift.rec`` events, accepted only from the runner's code object, in order)."""

import os
import sys
from _blake2 import blake2b  # (hashlib would load OpenSSL into the server)

_BLOCKED_EVENTS = frozenset(
    (
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys._current_frames",
        "sys.settrace",
        "sys.setprofile",
        "sys.addaudithook",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "subprocess.Popen",
        "pty.spawn",
        "os.kill",
        "os.killpg",
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.getaddrinfo",
        "os.chroot",
        "os.symlink",
        "os.link",
    )
)
_BLOCKED_IMPORTS = frozenset(
    ("ctypes", "_ctypes", "cffi", "_posixsubprocess", "_signal", "_xxsubinterpreters", "_testcapi", "_testinternalcapi")
)
_WATCH = _BLOCKED_EVENTS | frozenset(("gift.rec", "open", "import", "exec", "function.__new__", "object.__getattr__"))
_DENY_PARTS = frozenset(("mem", "kmem", "kcore", "fd", "fdinfo", "map_files", "pagemap", "task", "environ", "syscall"))


# --------------------------------------------------------------------------- hook
def _install_hook(key, fd, protected):
    """Install the audit hook.  ``key`` None -> blocking only, no record."""
    _write, _mac, _getframe, _type, _str, _bytes, _int = (os.write, blake2b, sys._getframe, type, str, bytes, int)
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
                ok = _type(body) is _str and f.f_code is runner_code and not st["bad"]
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
