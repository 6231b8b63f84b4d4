"""The fork server's side of one candidate: fork it, read its record, reap it and everything it left
behind, measure its CPU use (who may run next, and how long its deadline stretches)."""

import json
import os
import selectors
import signal
import stat
import time

from .osutil import _rmtree, _uid_of
from .record import _verify
from .runner import _child

RECORD_CAP = 64 << 20  # bytes of record kept by the server per candidate


class _Cand:
    """One running candidate (child C) of the server."""

    __slots__ = (
        "i",
        "req",
        "pid",
        "pidfd",
        "rfd",
        "buf",
        "overflow",
        "t0",
        "deadline",
        "hard",
        "tmp",
        "slot",
        "uid",
        "status",
        "rec_open",
        "exit_t",
        "timed_out",
        "cpu",
        "sample_t",
        "idle",
    )


class Candidates:
    """Start, finish, sweep and measurement of the server's candidates (``Server`` holds the state:
    ``running``, ``free_slots``, ``sel``, ``uid``, ``slots``, ...)."""

    # ------------------------------------------------------------ start/finish
    def _start(self, req):
        c = _Cand()
        c.i = req.get("i")
        c.req = req
        c.t0 = time.monotonic()
        timeout = float(req.get("timeout", 10.0))
        c.deadline = c.t0 + timeout
        c.hard = c.t0 + 4 * timeout + 1.0  # >= 1/4 core: 2 servers per core, <= 2 busy candidates each
        c.slot = self.free_slots.pop()
        c.uid = self.uid + c.slot if self.uid else 0
        self.seq += 1
        c.tmp = os.path.join(self.base, f"c{self.seq}")
        os.mkdir(c.tmp, 0o700)
        if c.uid:
            os.chown(c.tmp, c.uid, c.uid)
        tests = self._compile_tests(req) if req.get("mode") in ("assert", "humaneval") else None
        if req.get("mode") == "plus":
            tests = self._decode_inputs(req)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                _child(req, c.tmp, wfd, c.uid, tests)
            finally:
                os._exit(0)
        os.close(wfd)
        os.set_blocking(rfd, False)
        c.pid, c.rfd = pid, rfd
        c.buf = bytearray()
        c.overflow = False
        c.status = None
        c.rec_open = True
        c.exit_t = None
        c.timed_out = False
        c.cpu = 0
        c.sample_t = c.t0
        c.idle = False
        try:
            c.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            c.pidfd = None
        self.sel.register(rfd, selectors.EVENT_READ, ("rec", c))
        if c.pidfd is not None:
            self.sel.register(c.pidfd, selectors.EVENT_READ, ("pid", c))
        self.running[pid] = c

    def _reap(self, c, block=False):
        """Kill the candidate's session (while its pid is still reserved: before
        reaping) and collect the exit status."""
        if c.status is not None:
            return
        if not block:
            try:
                info = os.waitid(os.P_PID, c.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
            if info is None:
                return
        try:
            os.killpg(c.pid, signal.SIGKILL)
        except OSError:
            pass
        if block:
            try:
                os.kill(c.pid, signal.SIGKILL)
            except OSError:
                pass
        _, c.status = os.waitpid(c.pid, 0)
        c.exit_t = time.monotonic()
        if c.pidfd is not None:
            try:
                self.sel.unregister(c.pidfd)
            except (KeyError, ValueError):
                pass
            os.close(c.pidfd)
            c.pidfd = None
        self._sweep(c)

    def _read_rec(self, c):
        while True:
            try:
                data = os.read(c.rfd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.sel.unregister(c.rfd)
                c.rec_open = False
                return
            if len(c.buf) < RECORD_CAP:
                c.buf += data
            else:
                c.overflow = True

    def _finish(self, c):
        now = time.monotonic()
        if c.status is None:
            self._reap(c, block=True)
        if c.rec_open:
            self._read_rec(c)
            if c.rec_open:
                self.sel.unregister(c.rfd)
        os.close(c.rfd)
        del self.running[c.pid]
        self.free_slots.append(c.slot)
        tmp = c.tmp
        try:
            os.rmdir(tmp)
        except OSError:
            _rmtree(tmp)
            if os.path.exists(tmp):  # e.g. chmod 000 subdirs left by the candidate
                for root, dirs, _ in os.walk(tmp):
                    for d in dirs:
                        try:
                            os.chmod(os.path.join(root, d), 0o700)
                        except OSError:
                            pass
                _rmtree(tmp)
        end = c.exit_t if c.exit_t is not None and not c.timed_out else now
        out = {"i": c.i, "duration": min(end, now) - c.t0, "timed_out": c.timed_out, "overflow": c.overflow}
        st = c.status
        if os.WIFSIGNALED(st):
            out["signal"] = os.WTERMSIG(st)
        else:
            out["exit"] = os.WEXITSTATUS(st)
        out.update(_verify(bytes(c.buf)))
        self._send(out)

    def _send(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(1, data) :]

    # ------------------------------------------------------------ sweeping
    def _sweep(self, c):
        """Kill every process the finished candidate may have left behind."""
        me = os.getpid()
        if self.own_proc and (self.slots == 1 or not self.uid):
            self._kill_matching(lambda p: p not in (1, me))  # nothing else runs: everything but us is a stray
            self._reap_orphans()
        elif self.own_proc:
            # other candidates run concurrently: strays are recognised by the uid of
            # the finished candidate's slot (a candidate cannot change its uid)
            self._kill_matching(lambda p: p not in (1, me) and p not in self.running and _uid_of(p) == c.uid)
            self._reap_orphans()
        elif c.uid:
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgid(c.uid)
                    os.setuid(c.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            self._reap_orphans()
        if self.private_tmp and c.uid:
            for d in ("/tmp", "/dev/shm", "/var/tmp"):
                try:
                    names = os.listdir(d)
                except OSError:
                    continue
                for n in names:
                    p = os.path.join(d, n)
                    try:
                        if os.lstat(p).st_uid == c.uid:
                            if stat.S_ISDIR(os.lstat(p).st_mode):
                                _rmtree(p)
                            else:
                                os.unlink(p)
                    except OSError:
                        pass

    @staticmethod
    def _kill_matching(match):
        """SIGKILL every process of this pid namespace that ``match(pid)`` selects, until none is left
        (at most three passes)."""
        for _ in range(3):
            found = False
            for n in os.listdir("/proc"):
                if n.isdigit() and match(int(n)):
                    found = True
                    try:
                        os.kill(int(n), signal.SIGKILL)
                    except OSError:
                        pass
            if not found:
                break
            time.sleep(0.001)

    def _reap_orphans(self):
        """Reap zombies that are not running candidates (orphans re-parented to PID 1)."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in self.running:
                # a tracked candidate is handled by _reap; look for others explicitly
                break
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
            except ChildProcessError:
                return
        if self.own_proc:
            for n in os.listdir("/proc"):
                if n.isdigit():
                    p = int(n)
                    if p != 1 and p not in self.running:
                        try:
                            os.waitpid(p, os.WNOHANG)
                        except ChildProcessError:
                            pass

    # ------------------------------------------------------------ measurement
    def _tasks(self, c):
        """Thread ids of the candidate and of its child processes (apps_stdio)."""
        out = []
        pids = [c.pid]
        try:
            with open(f"/proc/{c.pid}/task/{c.pid}/children") as f:
                pids += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass
        for p in pids:
            try:
                out += [(p, t) for t in os.listdir(f"/proc/{p}/task")]
            except OSError:
                pass
        return out

    def _sched(self, c):
        """-> (summed on-CPU ns, max run-queue delay ns, rss bytes) over the candidate's tasks."""
        cpu = delay = 0
        for p, t in self._tasks(c):
            try:
                with open(f"/proc/{p}/task/{t}/schedstat", "rb") as f:
                    a = f.read().split()
                cpu += int(a[0])
                delay = max(delay, int(a[1]))
            except (OSError, ValueError, IndexError):
                pass
        rss = 0
        try:
            with open(f"/proc/{c.pid}/statm", "rb") as f:
                rss = int(f.read().split()[1]) * 4096
        except (OSError, ValueError, IndexError):
            pass
        return cpu, delay, rss

    def _sample(self, now):
        for c in self.running.values():
            if c.status is not None:
                c.idle = True
                continue
            dt = now - c.sample_t
            if dt < self.SAMPLE_S * 0.9:
                continue
            cpu, _, rss = self._sched(c)
            c.idle = (cpu - c.cpu) < self.IDLE_FRAC * dt * 1e9 and rss < self.IDLE_RSS
            c.cpu, c.sample_t = cpu, now

    def _can_admit(self):
        if not self.pending or not self.free_slots:
            return False
        if not self.running:
            return True
        # at most one CPU-bound candidate is started at a time; one that has been running for
        # LONG_S (a slow or spinning program) no longer holds the queue: one short candidate may
        # share the core with it. It loses no time by this: its deadline is extended by the time
        # it waited for a CPU (_check_deadline), so at most two busy candidates per server
        busy = [c for c in self.running.values() if not c.idle]
        if not busy:
            return True
        return len(busy) == 1 and time.monotonic() - busy[0].t0 >= self.LONG_S

    def _check_deadline(self, c, now):
        """At the wall deadline: extend it by the time the candidate waited for a
        CPU (run-queue delay), up to the hard cap; -> True if it timed out."""
        if now < c.deadline:
            return False
        if self.schedstat and now < c.hard:
            _, delay, _ = self._sched(c)
            timeout = float(c.req.get("timeout", 10.0))
            d = c.t0 + timeout + delay / 1e9
            if d > now + 0.001:
                c.deadline = min(d, c.hard)
                return False
        return True
