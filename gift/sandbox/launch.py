"""How a fork server is started: ``python -I`` running ``child.server.main`` (with only this folder as
import root), inside ``unshare --net --pid --mount`` with private /tmp, /var/tmp and /dev/shm where the
machine allows it, else ``unshare --net``, else as is; the isolation reached is in the server's hello."""

from __future__ import annotations

import os
import shlex
import shutil
import site
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))  # gift/sandbox: the import root of the child package
# the server's entry point: the child package imported from this folder alone (never gift's own __init__)
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from child.server import main; main()"

_MNT_SCRIPT = r"""
set -e
[ "$(readlink /proc/self/ns/mnt)" != "$1" ] || { echo "gift sandbox: not in a private mount namespace" >&2; exit 97; }
shift
%s
mount -t tmpfs -o mode=1777,size=512m gift-tmp /tmp
for d in /dev/shm /var/tmp; do
  if [ -d "$d" ]; then mount -t tmpfs -o mode=1777,size=64m gift-tmp "$d" || true; fi
done
%s
%s
export GIFT_SANDBOX_PRIVATE_TMP=1
exec "$@"
"""


_COVERED = ("/tmp", "/var/tmp", "/dev/shm")  # replaced by private tmpfs in the sandbox


def _needed_paths() -> set[str]:
    """What the fork server must be able to read: the interpreter, its stdlib and site-packages (a
    virtual environment), and the repository (gift/sandbox/child/)."""
    need = {
        os.path.dirname(os.__file__),
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.dirname(_HERE)),
        os.path.dirname(sys.executable),
    }
    try:
        need.update(site.getsitepackages())
    except AttributeError:
        pass
    return {os.path.realpath(p) for p in need} | need


def _keep_lines() -> tuple[str, str]:
    """Shell lines that keep a checkout or virtual environment living under /tmp, /var/tmp or
    /dev/shm visible after those are covered by private tmpfs: the covered directory is opened as
    a file descriptor first, and the needed top-level entry is bind-mounted back from it (``mount
    -c``: the /proc/self/fd path must not be canonicalised to the new, empty path). Without this a
    clone under /tmp could not start the sandbox with its mount namespace at all."""
    keep: dict[str, set[str]] = {}
    for p in _needed_paths():
        for d in _COVERED:
            if p.startswith(d + "/"):
                keep.setdefault(d, set()).add(p[len(d) + 1 :].split("/")[0])
    pre, post = [], []
    q = shlex.quote
    for n, d in enumerate(sorted(keep)):
        fd = 3 + n
        pre.append(f"exec {fd}<{q(d)}")
        for k in sorted(keep[d]):
            post.append(f"mkdir -p {q(d + '/' + k)} && mount -c --bind /proc/self/fd/{fd}/{q(k)} {q(d + '/' + k)}")
        post.append(f"exec {fd}<&-")
    return "\n".join(pre), "\n".join(post)


def _overmount_lines() -> str:
    """Shell lines (run only inside the private mount namespace) that make the
    interpreter readable for an unprivileged uid when one of its ancestors is
    not world-traversable (e.g. a pyenv in root's home folder, mode 0700): the ancestor is
    covered by a tmpfs into which only the needed child is bind-mounted back."""
    need = _needed_paths()
    plan: dict[str, set[str]] = {}
    for p in need:
        p = os.path.realpath(p)
        parts = [c for c in p.split("/") if c]
        cur = "/"
        for comp in parts:
            try:
                mode = os.stat(cur).st_mode
            except OSError:
                break
            if not mode & 0o001 and cur not in ("/", "/tmp"):
                plan.setdefault(cur, set()).add(comp)
                break
            cur = os.path.join(cur, comp)
    lines = []
    for n, (anc, kids) in enumerate(sorted(plan.items())):
        tmpd = f"/tmp/.gift_ov{n}"
        q = shlex.quote
        lines.append(f"mkdir -p {tmpd} && mount --bind {q(anc)} {tmpd}")
        lines.append(f"mount -t tmpfs -o mode=755,size=1m gift-ov {q(anc)}")
        for k in sorted(kids):
            lines.append(f"mkdir -p {q(anc + '/' + k)} && mount --bind {q(tmpd + '/' + k)} {q(anc + '/' + k)}")
        lines.append(f"umount {tmpd} && rmdir {tmpd}")
    return "\n".join(lines)


def _variants() -> list[tuple[str, list[str]]]:
    py = [sys.executable, "-I", "-c", _BOOT, _HERE]
    out = []
    unshare = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if unshare:
        try:
            mnt = os.readlink("/proc/self/ns/mnt")
        except OSError:
            mnt = None
        if mnt:
            pre, post = _keep_lines()
            script = _MNT_SCRIPT % (pre, post, _overmount_lines())
            out.append(
                (
                    "net+pid+mount",
                    [
                        unshare,
                        "--net",
                        "--pid",
                        "--fork",
                        "--kill-child",
                        "--mount",
                        "--mount-proc",
                        "/bin/sh",
                        "-c",
                        script,
                        "gift-sandbox",
                        mnt,
                    ]
                    + py,
                )
            )
        out.append(("net", [unshare, "--net"] + py))
    out.append(("none", py))
    want = os.environ.get("GIFT_SANDBOX_NS")
    if want:
        out = [v for v in out if v[0] == want] or out
    return out


def _server_env(preimport: str | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": "/nonexistent",
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    for k in ("GIFT_SANDBOX_PREIMPORT", "GIFT_SANDBOX_UID", "GIFT_SANDBOX_SLOTS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if preimport is not None and "GIFT_SANDBOX_PREIMPORT" not in os.environ:
        env["GIFT_SANDBOX_PREIMPORT"] = preimport
    return env
