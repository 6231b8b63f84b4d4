"""What the fork server holds before it forks (every candidate starts from this state)."""

import sys

# Always pre-imported by the fork server (cheap, and used by most generated code; the server
# needs json, _blake2, selectors, ... itself; not random or tempfile: see Server.__init__).
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
_BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


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
