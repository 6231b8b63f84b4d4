"""Stale Snakemake locks after a killed run.

Snakemake locks the working directory (``.snakemake/locks``) for the lifetime of a run and removes the
locks when it ends. A run killed with SIGKILL (OOM killer, preemption, ``kill -9``) cannot, and the next
run then stops with "Directory cannot be locked" until ``snakemake --unlock``. The workflow calls
``clear_stale_locks()`` when it starts: if no other Snakemake process works in the same directory
(Linux ``/proc``), the locks are stale and are removed; if one does, they are left alone.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def other_snakemake_in(directory: str | os.PathLike) -> int | None:
    """PID of another process whose command line mentions snakemake and whose cwd is ``directory``."""
    here = os.path.realpath(directory)
    me = os.getpid()
    ancestors = set()
    pid = me
    while pid > 1:  # our own launcher (e.g. `python -m snakemake` wrappers) does not count
        ancestors.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ancestors:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            cwd = os.path.realpath(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if cwd == here and b"snakemake" in cmd:
            return int(entry)
    return None


def clear_stale_locks(directory: str | os.PathLike = ".") -> bool:
    """Remove ``.snakemake/locks`` if no other Snakemake process runs here; True if something was removed."""
    locks = Path(directory) / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()) or not os.path.isdir("/proc"):
        return False
    if other_snakemake_in(directory) is not None:
        return False
    shutil.rmtree(locks, ignore_errors=True)
    print(
        f"Removed stale Snakemake locks in {os.path.realpath(directory)} "
        "(left by a killed run; no other Snakemake runs here).",
        file=sys.stderr,
    )
    return True
