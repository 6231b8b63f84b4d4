"""Snakemake's directory locks after a killed run: removed only when they provably belong to a dead run.

Snakemake (9.27.1: snakemake/persistence/__init__.py and persistence/file.py) locks the files a run reads
and writes, as ``.snakemake/locks/<n>.input.lock`` / ``<n>.output.lock`` (one path per line, nothing about
the owner), checks at start that no lock names a file of its own DAG ("Directory cannot be locked"), and
removes the whole lock folder when the run ends. A dry run neither checks hard nor writes nor removes. A run
killed with SIGKILL (OOM killer, preemption, ``kill -9``) leaves its locks, and the next run that overlaps
it stops until ``snakemake --unlock``, which removes every lock, a running run's too.

"No other Snakemake runs here" cannot be judged from this host's ``/proc``: on a shared filesystem, a run
in an allocation on another host holds locks in the same folder. So every run records who holds its locks,
beside them: ``owner.<host>.<pid>.json`` (host, boot id, pid, the process's start time, and the lock files
it took with their inode numbers), written by the workflow's ``onstart`` handler, which Snakemake calls
inside its locked section of a real run; Snakemake's removal of the lock folder takes the record with it.
When a real run starts (never a dry run), :func:`clear_stale_locks` removes the lock files of a record whose
run was on this host and is gone (no process with that pid and start time since this boot), and nothing
else: another host's locks, and locks without a record (another tool's, or of a run killed before its
``onstart``), stay, and the run says in one line whose they are and that ``snakemake --unlock`` removes
them once that run is known to be over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

PREFIX = "owner."


def _lock_dir(directory: str | os.PathLike) -> Path:
    return Path(directory) / ".snakemake" / "locks"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def me() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _start_time(pid)}


def record_owner(directory: str | os.PathLike, lockfiles: Iterable[str | os.PathLike]) -> Path | None:
    """Record this process as the owner of ``lockfiles`` (the lock files Snakemake wrote for this run)."""
    held = []
    for f in lockfiles:
        try:
            held.append({"name": Path(f).name, "inode": os.stat(f).st_ino})
        except OSError:
            continue
    if not held:
        return None
    owner = dict(me(), locks=held)
    out = _lock_dir(directory) / f"{PREFIX}{owner['host']}.{owner['pid']}.json"
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(owner, indent=2) + "\n")
    os.replace(tmp, out)
    return out


def alive(owner: dict) -> bool | None:
    """Whether the run of ``owner`` still runs: None when it ran on another host (this host cannot tell)."""
    if owner.get("host") != socket.gethostname():
        return None
    if owner.get("boot") and _boot_id() and owner["boot"] != _boot_id():
        return False  # this host rebooted since
    pid = int(owner["pid"])
    if Path("/proc").is_dir():
        return _start_time(pid) is not None and _start_time(pid) == owner.get("start")
    try:  # without /proc: any process with that pid counts as the owner (the safe side)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale_locks(directory: str | os.PathLike = ".") -> list[str]:
    """Remove the lock files of this host's dead runs (see the module's docstring); say in one line whose
    locks are left. Returns the names of the lock files removed."""
    locks = _lock_dir(directory)
    if not locks.is_dir():
        return []
    removed, kept = [], {}
    for path in sorted(locks.glob(f"{PREFIX}*.json")):
        try:
            owner = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        state = alive(owner)
        if state is False:
            path.unlink(missing_ok=True)  # the record first: a kill in between leaves locks, never a record
            for held in owner.get("locks", []):
                f = locks / held["name"]
                try:
                    if os.stat(f).st_ino == held["inode"]:
                        f.unlink()
                        removed.append(held["name"])
                except OSError:
                    continue
        else:
            where = "running" if state else "on another host"
            for held in owner.get("locks", []):
                kept[held["name"]] = f"{owner.get('host')} pid {owner.get('pid')}, {where}"
    left = sorted(p.name for p in locks.glob("*.lock") if p.name not in removed)
    if removed:
        print(f"Removed Snakemake's locks of a killed run on this host: {', '.join(sorted(removed))}", file=sys.stderr)
    if left:
        owners = sorted({kept.get(name, "no record of their owner") for name in left})
        print(
            f"Snakemake's locks {', '.join(left)} in {locks} are left in place ({'; '.join(owners)}): "
            "if that run is over, `snakemake --unlock` removes them",
            file=sys.stderr,
        )
    return removed
