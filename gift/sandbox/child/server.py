"""The event-driven fork server and its entry point ``main``."""

import collections
import gc
import json
import os
import selectors
import sys
import time

from .candidates import Candidates
from .codec import _init_numpy, dec_plus
from .osutil import _rmtree
from .preload import _BASE_ENV, _LOADED, _OPTIONAL, _PREIMPORT, _own_streams


class Server(Candidates):
    """Event-driven fork server.

    Requests arrive as JSON lines on stdin (each carries an ``i`` that is echoed
    back) and are queued; up to ``slots`` candidates run at the same time, but a
    new one is only started while every running one was measured *blocked*
    (less than ``IDLE_FRAC`` of a core over the last sample, RSS under
    ``IDLE_RSS``), so at most one CPU-bound candidate per server runs at any
    time.  Wall-clock timeouts discount the time the candidate spent waiting
    for a CPU (run-queue delay from /proc/<pid>/schedstat)."""

    SAMPLE_S = 0.02
    IDLE_FRAC = 0.05
    IDLE_RSS = 1 << 30
    LONG_S = 0.25  # a candidate busy for longer than this no longer holds back the next one

    def __init__(self):
        self.pid1 = os.getpid() == 1
        try:  # only sweep /proc if it is this pid namespace's own proc mount
            self.own_proc = self.pid1 and os.readlink("/proc/self") == "1"
        except OSError:
            self.own_proc = False
        # (not tempfile, which imports random: a loaded random module reseeds itself from
        # os.urandom in every forked child, ~45 more page faults per candidate)
        self.base = os.path.join(os.environ.get("TMPDIR") or "/tmp", "gift-sbx-" + os.urandom(8).hex())
        os.mkdir(self.base, 0o700)
        os.chmod(self.base, 0o711)
        self.uid = 0
        want = os.environ.get("GIFT_SANDBOX_UID", "auto")
        if os.geteuid() == 0 and want != "0":
            cand = 200000 + int.from_bytes(os.urandom(4), "little") % (2_000_000_000 - 200000)
            if self._uid_works(cand):
                self.uid = cand
        self.private_tmp = os.environ.get("GIFT_SANDBOX_PRIVATE_TMP") == "1"
        try:
            with open("/proc/self/schedstat") as f:
                self.schedstat = len(f.read().split()) >= 2
        except OSError:
            self.schedstat = False
        # concurrency needs: CPU measurement, and a uid per slot so that concurrent
        # candidates cannot touch each other and strays can be attributed
        slots = 4 if (self.schedstat and self.uid) else 1
        try:
            slots = int(os.environ.get("GIFT_SANDBOX_SLOTS", slots))
        except ValueError:
            pass
        if not (self.schedstat and self.uid):
            slots = 1
        self.slots = max(1, min(slots, 64))
        self.free_slots = list(range(self.slots))
        self.running = {}  # pid -> _Cand
        self.pending = collections.deque()
        self.seq = 0
        self.code_cache = {}
        self.input_cache = {}
        self.input_cache_chars = 0

    def _uid_works(self, uid):
        """Can a child running as ``uid`` still read the interpreter and libraries?"""
        import site

        paths = [os.path.dirname(os.__file__)] + list(site.getsitepackages())
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                for p in paths:
                    if os.path.isdir(p):
                        os.listdir(p)
                os.listdir(os.path.join(os.path.dirname(os.__file__), "encodings"))
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        return os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0

    def hello(self):
        net = "unknown"
        try:
            with open("/proc/net/dev") as f:
                ifs = [ln.split(":")[0].strip() for ln in f.readlines()[2:]]
            net = "isolated" if all(i == "lo" for i in ifs) else "shared"
        except OSError:
            pass
        return {
            "ready": True,
            "pid1": self.pid1,
            "own_proc": self.own_proc,
            "uid": self.uid,
            "net": net,
            "private_tmp": self.private_tmp,
            "numpy": "numpy" in sys.modules,
            "pandas": "pandas" in sys.modules,
            "python": sys.version.split()[0],
            "slots": self.slots,
            "schedstat": self.schedstat,
            "preimported": sorted(set(_LOADED)),
        }

    # ------------------------------------------------------------ compile cache
    def _compile_tests(self, req):
        """Test code objects, compiled once per distinct source in the server (the
        same tests recur for every sample of a task) and inherited by the fork."""
        out = []
        cache = self.code_cache
        if len(cache) > 20000:
            cache.clear()
        for i, src in enumerate(req.get("tests") or []):
            k = (i, src)
            c = cache.get(k)
            if c is None:
                try:
                    c = compile(src, f"<test {i}>", "exec")
                except BaseException as e:
                    c = f"test does not compile: {type(e).__name__}"
                cache[k] = c
            out.append(c)
        return out

    def _decode_inputs(self, req):
        """evalplus format: argument lists decoded once per distinct input text (the
        same inputs recur for every sample of a task), inherited by the fork.  A bad
        input becomes an empty argument list (the call then fails)."""
        out = []
        cache = self.input_cache
        if self.input_cache_chars > (256 << 20):
            cache.clear()
            self.input_cache_chars = 0
        for src in req.get("inputs") or []:
            v = cache.get(src)
            if v is None:
                try:
                    v = dec_plus(json.loads(src))
                    v = tuple(v) if type(v) is list else ()
                except BaseException:
                    v = ()
                cache[src] = v
                self.input_cache_chars += len(src)
            out.append(v)
        return out

    # ------------------------------------------------------------ main loop
    def serve(self):
        self.sel = selectors.DefaultSelector()
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ, ("in", None))
        inbuf = bytearray()
        eof = False
        while True:
            while self._can_admit():
                req = self.pending.popleft()
                try:
                    self._start(req)
                except Exception as e:  # never die on one bad request
                    self._send({"i": req.get("i"), "server_error": f"{type(e).__name__}: {e}"})
            if eof and not self.pending and not self.running:
                break
            now = time.monotonic()
            wake = now + 3600.0
            for c in self.running.values():
                wake = min(wake, c.deadline)
                if c.status is not None:
                    wake = min(wake, c.exit_t + 0.2)
                elif c.pidfd is None:
                    wake = min(wake, now + 0.005)
            sampling = bool(self.pending) and self.free_slots and self.running
            if sampling:
                wake = min(wake, min(c.sample_t for c in self.running.values()) + self.SAMPLE_S)
            evs = self.sel.select(max(0.0, wake - now))
            for key, _ in evs:
                kind, c = key.data
                if kind == "in":
                    try:
                        data = os.read(0, 1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        eof = True
                        self.sel.unregister(0)
                        continue
                    inbuf += data
                    while True:
                        j = inbuf.find(b"\n")
                        if j < 0:
                            break
                        line = bytes(inbuf[:j])
                        del inbuf[: j + 1]
                        try:
                            req = json.loads(line)
                        except ValueError as e:
                            self._send({"i": None, "server_error": f"bad request: {e}"})
                            continue
                        if "cancel" in req:  # the caller moves a queued request to an idle server
                            for r in self.pending:
                                if r.get("i") == req["cancel"]:
                                    self.pending.remove(r)
                                    self._send({"i": req["cancel"], "cancelled": True})
                                    break
                            continue  # already started (or done): its result comes as usual
                        self.pending.append(req)
                elif kind == "rec":
                    self._read_rec(c)
                elif kind == "pid":
                    self._reap(c)
            now = time.monotonic()
            for c in list(self.running.values()):
                if c.status is None and c.pidfd is None:
                    self._reap(c)
                if c.status is not None:
                    if not c.rec_open or now >= c.exit_t + 0.2:
                        self._finish(c)  # (a stray still holding the pipe is given up on)
                elif self._check_deadline(c, now):
                    c.timed_out = True
                    self._reap(c, block=True)
                    self._finish(c)
            if self.pending and self.free_slots and self.running:
                self._sample(time.monotonic())


def main():
    for m in _PREIMPORT:
        __import__(m)
    asked = os.environ.get("GIFT_SANDBOX_PREIMPORT")
    asked = (_OPTIONAL + ["numpy", "pandas"]) if asked is None else asked.split()
    for m in asked:
        try:
            __import__(m)
        except BaseException:
            continue
        _LOADED.append(m)
    _init_numpy()
    srv = Server()
    os.environ.clear()
    os.environ.update(_BASE_ENV)
    # candidates are forks of this state: numpy.random (not reseeded at fork) is seeded once,
    # so every candidate sees the same sequence on every run (random: seeded in each child)
    if "numpy" in sys.modules:
        try:
            sys.modules["numpy"].random.seed(0)
        except Exception:
            pass
    _own_streams()
    gc.collect()
    gc.freeze()  # children do not touch (copy-on-write) the server's objects when they collect
    sys.stdout.write(json.dumps(srv.hello()) + "\n")
    sys.stdout.flush()
    try:
        srv.serve()
    finally:
        _rmtree(srv.base)
