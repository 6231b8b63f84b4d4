"""The watchdog of one server (``python -m gift.serve run DIR``) and the command line (``stop``, ``list``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..devices import seen_devices
from . import manager
from .manager import _event, _leases, _local_servers, _read, _start_time, _write, alive, me, stop_all


def _pdeathsig():  # runs in the child between fork and exec
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _health(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _kill_group(timeout_s: float = 30) -> None:
    """SIGKILL whatever is left in this process group (vLLM's engine processes), this process excepted."""
    pgid, mine = os.getpgid(0), os.getpid()
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != mine:
            try:
                if os.getpgid(int(p.name)) == pgid:
                    os.kill(int(p.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def watch(d: Path) -> int:
    """Run one server until its owner ends, it is told to stop, it stays idle, or it dies."""
    spec = _read(d / "spec.json")
    root = d.parent
    stop_now = []
    signal.signal(signal.SIGTERM, lambda *a: stop_now.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *a: stop_now.append("SIGINT"))
    state = {"status": "starting", "watchdog": me(), **spec}
    _write(d / "state.json", state)
    t0 = time.time()
    model = spec["argv"][spec["argv"].index("--model") + 1]
    _event(root, f"start {d.name} model={model} url={spec['url']} CUDA_VISIBLE_DEVICES={seen_devices()}")
    proc = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
    state["server"] = f"{proc.pid}:{_start_time(proc.pid)}"
    _write(d / "state.json", state)
    last_busy, reason = time.time(), None
    while reason is None:
        time.sleep(0.5)
        if proc.poll() is not None:
            reason = f"the server exited with {proc.returncode}"
        elif stop_now or (d / "stop").exists():
            reason = "asked to stop" if not stop_now else stop_now[0]
        elif not alive(spec["owner"]):
            reason = f"its owner {spec['owner']} ended"
        elif state["status"] == "starting":
            if _health(spec["url"]):
                state.update(status="ready", ready_s=round(time.time() - t0, 1))
                _write(d / "state.json", state)
                _event(root, f"ready {d.name} after {state['ready_s']} s")
                last_busy = time.time()
            elif time.time() - t0 > float(spec["start_timeout_s"]):
                reason = f"not ready after {spec['start_timeout_s']} s"
        elif _leases(d):
            last_busy = time.time()
        elif time.time() - last_busy > float(spec["idle_timeout_s"]):
            reason = f"idle for {spec['idle_timeout_s']} s"
    state.update(status="stopping", reason=reason)
    _write(d / "state.json", state)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    _kill_group()
    state.update(status="stopped", stopped_s=round(time.time() - t0, 1))
    _write(d / "state.json", state)
    (d / "stop").unlink(missing_ok=True)
    _event(root, f"stop {d.name}: {reason}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m gift.serve", description="the servers of the served mode (gift.serve)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="(internal) the watchdog of one server").add_argument("dir")
    st = sub.add_parser("stop", help="stop the servers under a state folder (all of them, or one owner's)")
    st.add_argument("--dir", default=None)
    st.add_argument("--owner", default=None)
    st.add_argument("--idle", action="store_true", help="only the servers that no job holds")
    sub.add_parser("list", help="the servers running on this host").add_argument("--dir", default=None)
    cl = sub.add_parser("claim", help="run a command (a fine-tuning) with this host's devices: no server beside it")
    cl.add_argument("--dir", default=None)
    cl.add_argument("command", nargs=argparse.REMAINDER, help="-- the command and its arguments")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return watch(Path(a.dir))
    root = Path(a.dir) if a.dir else manager.state_root()
    if a.cmd == "claim":
        command = a.command[1:] if a.command[:1] == ["--"] else a.command
        if not command:
            ap.error("claim: give the command after --")
        with manager.devices_claimed(root, log=lambda m: print(m, file=sys.stderr, flush=True)):
            return subprocess.call(command)
    if a.cmd == "stop":
        print(f"stopped {stop_all(a.owner, root, idle_only=a.idle)} server(s)")
        return 0
    for d in _local_servers(root):
        st = _read(d / "state.json")
        print(d.name, st["status"], st["url"], "leases:", len(_leases(d)), "owner:", st["owner"])
    return 0
