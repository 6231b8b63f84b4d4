"""Snakemake's locks belong to their run (gift.locks): a run records who holds its locks; a later real run
removes only the locks of a run that died on this host; a dry run touches none; another host's locks and
locks without a record stay, with a one-line hint. The real workflow: a planted lock survives `snakemake -n`,
and a run SIGKILLed on this host is continued by a plain rerun (no --unlock)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gift import locks

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def plant(work: Path, n: int, files: list[str], owner: dict | None = None) -> Path:
    """Lock files as Snakemake writes them (<n>.input.lock / <n>.output.lock), with an owner record."""
    d = work / ".snakemake" / "locks"
    d.mkdir(parents=True, exist_ok=True)
    out = d / f"{n}.output.lock"
    out.write_text("\n".join(files) + "\n")
    (d / f"{n}.input.lock").write_text("")
    if owner is not None:
        held = [{"name": p.name, "inode": p.stat().st_ino} for p in (out, d / f"{n}.input.lock")]
        (d / f"owner.{owner['host']}.{owner['pid']}.json").write_text(json.dumps(dict(owner, locks=held)))
    return out


def test_only_the_locks_of_a_dead_run_on_this_host_are_removed(tmp_path, capsys):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running = dict(locks.me(), pid=child.pid, start=locks._start_time(child.pid))
        a = plant(tmp_path, 0, ["results/a"], running)
        b = plant(tmp_path, 1, ["results/b"], dict(running, host="node-on-another-host", pid=4242))
        c = plant(tmp_path, 2, ["results/c"])  # no record: a run killed before its onstart, or another tool's
        assert locks.clear_stale_locks(tmp_path) == []
        assert a.exists() and b.exists() and c.exists()
    finally:
        child.kill()
        child.wait()
    removed = locks.clear_stale_locks(tmp_path)  # the run of lock 0 is gone now
    assert sorted(removed) == ["0.input.lock", "0.output.lock"]
    assert not a.exists() and not list(a.parent.glob(f"owner.{socket.gethostname()}.*"))
    assert b.exists() and c.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert "1.input.lock, 1.output.lock, 2.input.lock, 2.output.lock" in err[-1]
    assert "node-on-another-host pid 4242, on another host" in err[-1] and "no record of their owner" in err[-1]
    assert "`snakemake --unlock` removes them" in err[-1]
    # a lock file that is not the one recorded (same name, another file: a later run's) is left alone
    d = tmp_path / ".snakemake" / "locks"
    (d / "0.output.lock").write_text("results/new\n")
    dead = dict(locks.me(), pid=child.pid, start="1", locks=[{"name": "0.output.lock", "inode": -1}])
    (d / "owner.x.json").write_text(json.dumps(dead))
    locks.clear_stale_locks(tmp_path)
    assert (d / "0.output.lock").exists() and not (d / "owner.x.json").exists()


def test_a_run_records_the_lock_files_it_holds(tmp_path):
    d = tmp_path / ".snakemake" / "locks"
    d.mkdir(parents=True)
    held = [d / "0.input.lock", d / "0.output.lock"]
    for f in held:
        f.write_text("x\n")
    record = locks.record_owner(tmp_path, held)
    owner = json.loads(record.read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert [h["name"] for h in owner["locks"]] == ["0.input.lock", "0.output.lock"]
    assert locks.alive(owner) is True
    assert locks.record_owner(tmp_path, []) is None  # --nolock: nothing held, nothing recorded


def snakemake(work: Path, *args, **kw):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work)]
    return subprocess.run([*cmd, "--configfile", str(TINY), "--cores", "1", *args], **kw)


SEED = "results/tiny/data/seed.jsonl"


@pytest.mark.slow
def test_a_dry_run_leaves_a_planted_lock_and_a_real_run_names_its_owner(tmp_path):
    other = {"host": "node-on-another-host", "boot": "", "pid": 4242, "start": "1"}
    lock = plant(tmp_path, 0, [SEED], other)
    bare = plant(tmp_path, 1, ["results/tiny/data/test.jsonl"])  # no record at all
    dry = snakemake(tmp_path, "-n", SEED, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert lock.exists() and bare.exists() and len(list(lock.parent.iterdir())) == 5
    real = snakemake(tmp_path, SEED, capture_output=True, text=True, timeout=300)
    assert real.returncode != 0 and not (tmp_path / SEED).exists()
    assert "Directory cannot be locked" in real.stdout + real.stderr
    hint = [ln for ln in real.stderr.splitlines() if ln.startswith("Snakemake's locks ")]
    assert len(hint) == 1 and "node-on-another-host pid 4242, on another host" in hint[0], real.stderr[-3000:]
    assert lock.exists() and bare.exists()


@pytest.mark.slow
def test_a_run_killed_on_this_host_is_continued_by_a_plain_rerun(tmp_path):
    """SIGKILL the whole run once it holds its locks (its owner record is written), rerun: no --unlock."""
    targets = [SEED]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    cmd += ["--configfile", str(TINY), "--cores", "1", *targets]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    d = tmp_path / ".snakemake" / "locks"
    deadline = time.time() + 300
    while time.time() < deadline and not list(d.glob("owner.*.json")):
        assert proc.poll() is None, "the run ended before it recorded its locks"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sorted(p.name for p in d.glob("*.lock")) == ["0.input.lock", "0.output.lock"]
    again = snakemake(tmp_path, *targets, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Removed Snakemake's locks of a killed run on this host: 0.input.lock, 0.output.lock" in again.stderr
    assert (tmp_path / SEED).exists()
    assert not d.exists() or not list(d.iterdir())  # the rerun's own locks went with it
