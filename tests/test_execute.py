"""Tests of the sandboxed execution engine (gift.execute).

Hostile candidates are run in one parallel batch (module fixture) and each test
asserts on its own row, so the whole file stays well under a minute.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from gift.execute import compare_call_output, compare_stdout, execute, execute_one, sandbox_info

FIX = Path(__file__).parent / "fixtures" / "execute"
ROOT = Path(__file__).resolve().parents[1]


def _jsonl(name):
    return [json.loads(ln) for ln in (FIX / name).read_text().splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def info():
    return sandbox_info()


# ------------------------------------------------------------------ real programs
def test_mbpp_rows_pass_with_setup_code():
    rows = [
        {
            "id": f"mbpp{r['task_id']}",
            "format": "assert",
            "code": r["code"],
            "tests": r["test_list"],
            "setup": r["test_setup_code"],
        }
        for r in _jsonl("mbpp_sample.jsonl")
    ]
    assert any(r["setup"].strip() for r in rows)
    res = execute(rows, workers=2)
    assert [r["id"] for r in res] == [r["id"] for r in rows]
    for r in res:
        assert r["passed"] and r["status"] == "passed", r
        assert r["tests_passed"] == r["tests_total"] == 3
    # the setup code is really needed: without it task 367 cannot pass
    no_setup = [dict(r, setup="") for r in rows if r["setup"].strip()]
    assert not execute(no_setup)[0]["passed"]


def test_codeinsight_numpy_pandas_re_pass_and_wrong_code_fails():
    src = _jsonl("codeinsight_sample.jsonl")
    assert {tuple(r["libraries"]) for r in src} == {("numpy",), ("pandas",), ("re",)}
    rows = [{"id": str(r["task_id"]), "format": "assert", "code": r["code"], "tests": r["tests"]} for r in src]
    assert all("\n" in r["tests"][0] for r in rows)  # multi-line assert scripts
    bad = [dict(r, id=r["id"] + "-bad", code=r["code"].replace("return", "return None and")) for r in rows]
    res = execute(rows + bad, workers=2)
    for r in res[: len(rows)]:
        assert r["status"] == "passed", r
    for r in res[len(rows) :]:
        assert r["status"] == "failed" and r["tests_passed"] == 0, r


def test_humaneval_check():
    rows = []
    for p in _jsonl("humaneval_sample.jsonl"):
        rows.append(
            {
                "id": p["task_id"],
                "format": "humaneval",
                "entry_point": p["entry_point"],
                "code": p["prompt"] + p["canonical_solution"],
                "tests": [p["test"]],
            }
        )
        rows.append(
            {
                "id": p["task_id"] + "-wrong",
                "format": "humaneval",
                "entry_point": p["entry_point"],
                "code": p["prompt"] + "    return None\n",
                "tests": [p["test"]],
            }
        )
    res = execute(rows)
    assert [r["status"] for r in res] == ["passed", "failed", "passed", "failed"], res
    assert all(r["tests_total"] == 1 for r in res)


def test_apps_call_and_stdio_pass():
    rows = _jsonl("apps_style.jsonl")
    res = {r["id"]: r for r in execute(rows)}
    for row in rows:
        assert res[row["id"]]["status"] == "passed", res[row["id"]]
        assert res[row["id"]]["tests_passed"] == len(row["tests"])


def test_apps_wrong_answers_fail():
    rows = _jsonl("apps_style.jsonl")
    wrong = [
        dict(rows[0], id="w1", code="def mean_and_pair(xs):\n    return (sum(xs) / len(xs) + 1e-3, len(xs))\n"),
        dict(rows[3], id="w2", code="print(6)\nprint('1 3 2')\n"),
        dict(rows[3], id="w3", code="print('6 1 2 3')\n"),  # same tokens, wrong lines
        dict(rows[4], id="w4", code="print(0.3334)\n"),
    ]
    res = execute(wrong)
    assert [r["status"] for r in res] == ["failed"] * 4, res
    assert "wrong output" in res[0]["detail"]


def test_compare_rules():
    assert compare_call_output([1, 2], [[1, 2]])
    assert compare_call_output([0.1 + 0.2, 3], [[0.3, 3]])
    assert not compare_call_output([0.31, 3], [[0.3, 3]])
    assert compare_call_output({1: "a"}, [{"1": "a"}])
    assert not compare_call_output("1", 1)
    assert compare_stdout("1  2 \n\n3\n", "1 2\n3")
    assert compare_stdout("0.3333333333\n", ["0.333333333"])
    assert not compare_stdout("1 2 3\n", "1 2\n3")
    assert not compare_stdout("", "0")


def test_timeout_and_wall_clock():
    t = time.monotonic()
    r = execute_one(
        {"id": "loop", "format": "assert", "code": "while True:\n    pass\n", "tests": ["assert True"], "timeout_s": 1}
    )
    assert r["status"] == "timeout" and not r["passed"]
    assert 0.9 <= r["duration_s"] < 3 and time.monotonic() - t < 10


def test_timeout_reports_tests_passed_so_far():
    r = execute_one(
        {
            "id": "slow",
            "format": "assert",
            "code": "def f(x):\n    return x\n",
            "tests": ["assert f(1) == 1", "while True: pass"],
            "timeout_s": 1,
        }
    )
    assert r["status"] == "timeout" and r["tests_passed"] == 1 and r["tests_total"] == 2


# --------------------------------------------------------------- hostile programs
def _forge_code():
    # brute-force the record fd and write something that looks like a record
    return textwrap.dedent("""
        import os
        def f(x):
            return 0
        for fd in range(3, 1024):
            for line in (b"K " + b"00" * 32 + b"\\n", b"0 C ok 0\\n", b"1 T 0 ok 0\\n", b"2 E 0\\n"):
                try:
                    os.write(fd, line)
                except OSError:
                    break
    """)


HOSTILE = {
    # name: (row overrides, allowed statuses)
    "sys_exit_top": ({"code": "import sys\nsys.exit(0)\ndef f(x): return x"}, {"failed"}),
    "os_exit_top": ({"code": "import os\nos._exit(0)"}, {"failed"}),
    "os_exit_in_test": ({"code": "import os\ndef f(x):\n    os._exit(0)"}, {"failed"}),
    "systemexit_in_test": ({"code": "def f(x):\n    raise SystemExit(0)"}, {"failed"}),
    "keyboardinterrupt": ({"code": "def f(x):\n    raise KeyboardInterrupt"}, {"failed"}),
    "patch_builtins": (
        {
            "code": textwrap.dedent("""
        import builtins, sys, os
        class AssertionError(Exception):
            pass
        builtins.AssertionError = AssertionError
        builtins.BaseException = AssertionError
        builtins.Exception = AssertionError
        builtins.print = lambda *a, **k: None
        sys.exit = lambda *a: None
        os._exit = lambda *a: None
        def f(x):
            return x
    """)
        },
        {"failed"},
    ),
    "always_equal": (
        {
            "code": textwrap.dedent("""
        class Eq:
            def __eq__(self, o): return True
            def __ne__(self, o): return False
        def f(x):
            return 5
    """),
            "format": "apps_call",
            "fn_name": "f",
            "tests": [json.dumps({"input": [1], "output": 2})],
        },
        {"failed"},
    ),
    "always_equal_sub_int": (
        {
            "code": textwrap.dedent("""
        class Eq(int):
            def __eq__(self, o): return True
        def f(x):
            return Eq(7)
    """),
            "format": "apps_call",
            "fn_name": "f",
            "tests": [json.dumps({"input": [1], "output": 2})],
        },
        {"failed"},
    ),
    "eq_object_call": (
        {
            "code": textwrap.dedent("""
        class Eq:
            def __eq__(self, o): return True
        def f(x):
            return Eq()
    """),
            "format": "apps_call",
            "fn_name": "f",
            "tests": [json.dumps({"input": [1], "output": 2})],
        },
        {"failed"},
    ),
    "print_tokens": (
        {
            "code": "import sys\nfor fd in (sys.stdout, sys.stderr):\n"
            "    print('K ' + '00'*32, file=fd)\n"
            "    print('0 C ok x\\n1 T 0 ok x\\n2 E x\\nPASSED', file=fd)\n"
            "def f(x): return 0"
        },
        {"failed"},
    ),
    "forge_record": ({"code": _forge_code()}, {"failed"}),
    "gc_hunt": ({"code": "import gc\nobjs = gc.get_objects()\ndef f(x): return x"}, {"error"}),
    "frame_walk_rerun_runner": (
        {
            "code": textwrap.dedent("""
        import sys
        def f(x):
            fr = sys._getframe()
            while fr is not None:
                g = fr.f_globals
                if '_runner' in g and 'req' in fr.f_locals:
                    req = dict(fr.f_locals['req'], code='def f(x):\\n    return 2\\n')
                    g['_runner'](req, fr.f_locals['tests'], ())
                    break
                fr = fr.f_back
            return 0
    """)
        },
        {"failed"},
    ),
    "key_hunt": (
        {
            "code": textwrap.dedent("""
        import sys
        found = []
        fr = sys._getframe()
        while fr is not None:
            for k, v in list(fr.f_locals.items()):
                if isinstance(v, (bytes, bytearray)) and len(v) == 32:
                    found.append(k)
            fr = fr.f_back
        def f(x):
            return 2 if found else 0
    """)
        },
        {"failed"},
    ),
    "proc_mem": ({"code": "data = open('/proc/self/mem', 'rb')\ndef f(x): return 2"}, {"error"}),
    "ctypes": ({"code": "import ctypes\ndef f(x): return 2"}, {"error"}),
    "fork_bomb": (
        {"code": "import os\nwhile True:\n    os.fork()\ndef f(x): return 2"},
        {"error", "killed", "timeout", "memory"},
    ),
    "kill_parent": ({"code": "import os\nos.kill(os.getppid(), 9)\nos.kill(1, 9)\ndef f(x): return 2"}, {"error"}),
    "memory_hog": ({"code": "xs = []\nwhile True:\n    xs.append(bytearray(1 << 26))", "mem_mb": 512}, {"memory"}),
    "memory_in_test": ({"code": "def f(x):\n    return [0] * (10 ** 10)"}, {"memory"}),
    "print_megabytes": (
        {"code": "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 100000)\ndef f(x): return 0"},
        {"failed"},
    ),
    "stdin_read": ({"code": "import sys\ndata = sys.stdin.read()\ndef f(x): return len(data)"}, {"failed"}),
    "syntax": ({"code": "def f(x) return 2"}, {"error"}),
    "raises_top": ({"code": "raise ValueError('boom')"}, {"error"}),
    "signal_handler": (
        {"code": "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)\ndef f(x): return 2"},
        {"error"},
    ),
    "stdio_exit_early": (
        {
            "code": "import sys\nsys.exit(0)\nprint(2)",
            "format": "apps_stdio",
            "tests": [json.dumps({"input": "", "output": "2"})],
        },
        {"failed"},
    ),
    "stdio_os_exit_flush": (
        {
            "code": "import os\nprint(2)\nos._exit(0)",
            "format": "apps_stdio",
            "tests": [json.dumps({"input": "", "output": "2"})],
        },
        {"failed"},
    ),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    rows = []
    for name, (over, _) in HOSTILE.items():
        row = {"id": name, "format": "assert", "tests": ["assert f(1) == 2"], "timeout_s": 3}
        row.update(over)
        rows.append(row)
    t = time.monotonic()
    res = execute(rows, workers=2)
    return {r["id"]: r for r in res}, time.monotonic() - t


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_contained(hostile, name):
    res, _ = hostile
    r = res[name]
    assert not r["passed"], r
    # `killed` (the candidate's server died and the row was retried and lost again) is containment too;
    # it shows up under heavy load and is never a pass
    assert r["status"] in HOSTILE[name][1] | {"killed"}, r
    assert len(r["detail"]) <= 300


def test_hostile_batch_does_not_hang(hostile):
    """A guard against a hung runner, not a speed target (benchmarks/bench_execute.py measures speed)."""
    _, elapsed = hostile
    assert elapsed < 300


def test_runner_survives_after_hostile(hostile):
    r = execute_one({"id": "after", "format": "assert", "code": "def f(x): return 2", "tests": ["assert f(1) == 2"]})
    assert r["status"] == "passed"


def test_passing_code_that_prints_and_uses_threads_passes():
    code = textwrap.dedent("""
        import threading, collections, heapq, math
        print('x' * 10**6)
        Point = collections.namedtuple('Point', 'x y')
        def f(x):
            out = []
            t = threading.Thread(target=lambda: out.append(x + 1))
            t.start(); t.join()
            return out[0] + 0 * math.floor(Point(1, 2).y)
    """)
    r = execute_one({"id": "ok", "format": "assert", "code": code, "tests": ["assert f(1) == 2"]})
    assert r["status"] == "passed", r


def test_files_written_to_cwd_are_removed_and_escape_prevented(tmp_path, info):
    victim = tmp_path / "victim"
    victim.mkdir()
    marker = f"gift-marker-{os.getpid()}-{time.time_ns()}"
    code = textwrap.dedent(f"""
        import os
        open({marker!r}, 'w').write('x')
        os.makedirs('sub/deeper', exist_ok=True)
        os.chmod('sub', 0)
        CWD = os.getcwd()
        def attempt(p):
            try:
                open(p, 'w').write('pwned')
                return True
            except OSError:
                return False
        ESC = [attempt('../escape-{marker}.txt'), attempt({str(victim / "abs.txt")!r}),
               attempt('/tmp/{marker}.txt')]
        def f(x):
            return 2 if os.path.exists({marker!r}) else 0
    """)
    r = execute_one(
        {
            "id": "files",
            "format": "assert",
            "code": code,
            "tests": ["assert f(1) == 2", "assert CWD != '/'", "print(ESC)"],
        }
    )
    assert r["status"] == "passed", r  # the file existed while it ran
    hits = subprocess.run(
        ["find", "/tmp", str(Path(__file__).resolve().parent.parent), "-name", f"*{marker}*"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if info["uid"] == 0 and not info["private_tmp"]:
        for h in hits + [str(victim / "abs.txt")]:
            if "escape" in h or h.endswith(".txt"):
                Path(h).unlink(missing_ok=True)
        assert not [h for h in hits if not h.endswith(".txt")], hits  # cwd file removed
        pytest.skip("running as root without a mount namespace: absolute writes not prevented")
    if not info["private_tmp"]:
        # no mount namespace (e.g. a container without CAP_SYS_ADMIN): the candidate's uid shares the
        # world-writable /tmp (docs/execution.md, "What holds where"); that write, and only that one, lands
        shared = f"/tmp/{marker}.txt"
        Path(shared).unlink(missing_ok=True)
        hits = [h for h in hits if h != shared]
    assert hits == [], hits  # cwd file removed, ../ and /tmp writes did not land on the host
    assert not (victim / "abs.txt").exists()


def test_no_network(info):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.1)
    port = srv.getsockname()[1]
    got = []

    def accept():
        deadline = time.time() + 6
        while time.time() < deadline:
            try:
                got.append(srv.accept())
                return
            except OSError:
                pass

    th = threading.Thread(target=accept)
    th.start()
    code = textwrap.dedent(f"""
        def f(x):
            import socket
            s = socket.create_connection(('127.0.0.1', {port}), timeout=2)
            s.sendall(b'hello')
            return 2
    """)
    r = execute_one({"id": "net", "format": "assert", "code": code, "tests": ["assert f(1) == 2"], "timeout_s": 4})
    th.join()
    srv.close()
    assert r["status"] == "failed" and not got, (r, got)
    assert info["net"] in ("isolated", "shared")


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("GIFT_SECRET_TOKEN", "hunter2")
    # server processes started before this test inherited nothing either: the
    # server env is built from scratch, but restart to be sure the check is real
    from gift.sandbox import pool as ex

    ex.shutdown()
    code = "import os\nENV = dict(os.environ)\n"
    tests = [
        "assert 'GIFT_SECRET_TOKEN' not in ENV",
        "assert set(ENV) <= {'PATH','LANG','HOME','PYTHONHASHSEED','OPENBLAS_NUM_THREADS',"
        "'OMP_NUM_THREADS','MKL_NUM_THREADS','TMPDIR','LC_CTYPE'}, sorted(ENV)",
        "assert ENV['HOME'] == os.getcwd()",
    ]
    r = execute_one({"id": "env", "format": "assert", "code": code, "tests": tests})
    assert r["status"] == "passed", r
    # the server's own settings (GIFT_SANDBOX_*) do not reach candidates, and what one
    # candidate puts in its environment does not reach the next one
    monkeypatch.setenv("GIFT_SANDBOX_SLOTS", "1")
    ex.shutdown()
    rows = [
        {
            "id": "set",
            "format": "assert",
            "code": "import os\nos.environ['LEAK'] = '1'\n",
            "tests": ["assert os.environ['LEAK'] == '1'"],
        },
        {
            "id": "get",
            "format": "assert",
            "code": code,
            "tests": ["assert 'LEAK' not in ENV and not any(k.startswith('GIFT') for k in ENV), ENV"],
        },
    ]
    assert [r["status"] for r in execute(rows, workers=1)] == ["passed", "passed"]
    ex.shutdown()


def test_candidates_see_the_same_seeded_random_sequences_every_run():
    from gift.sandbox import pool as ex

    code = "import random\nX = [random.random() for _ in range(3)]\n"
    rows = [
        {
            "id": f"r{i}",
            "format": "assert",
            "code": code,
            "tests": ["assert X == [0.8444218515250481, 0.7579544029403025, 0.420571580830845], X"],
        }
        for i in range(4)
    ]
    assert [r["status"] for r in execute(rows, workers=2)] == ["passed"] * 4
    ex.shutdown()  # a fresh server: the same sequence again
    assert execute(rows[:1], workers=1)[0]["status"] == "passed"


def test_no_ctypes_and_no_threading_at_fork_work_in_a_light_server():
    """ctypes must never be loaded where candidates run (reachable through sys.modules it
    would read the record key out of memory); threading and random (random is imported by
    tempfile) are left out of a light server unless the batch names them: their at-fork
    callbacks would run in every child."""
    from gift.sandbox import pool as ex

    ex.shutdown()  # (a running server that holds more than a batch needs is reused)
    code = (
        "import sys\nX = sorted(m for m in sys.modules if 'ctypes' in m or m in ('threading', 'queue', "
        "'ran' + 'dom', 'temp' + 'file'))\n"
    )  # (random/tempfile not named: the batch does not ask for them)
    r = execute_one({"id": "mods", "format": "assert", "code": code, "tests": ["assert X == [], X"]})
    assert r["status"] == "passed", r
    code = "import threading\nX = []\nt = threading.Thread(target=X.append, args=(1,))\nt.start()\nt.join()\n"
    r = execute_one({"id": "thr", "format": "assert", "code": code, "tests": ["assert X == [1]"]})
    assert r["status"] == "passed", r


def test_bad_rows_are_reported_not_raised():
    res = execute(
        [
            {"id": "x", "format": "nope", "code": "", "tests": []},
            {"id": "y", "format": "apps_call", "code": "", "tests": []},
            {"id": "z", "format": "assert", "code": "x = 1", "tests": []},
        ]
    )
    assert [r["status"] for r in res] == ["error", "error", "failed"]
    assert execute([]) == []


def test_cli_end_to_end(tmp_path):
    rows = [
        {"id": "a", "format": "assert", "code": "def f(x): return x + 1", "tests": ["assert f(1) == 2"]},
        {"id": "b", "format": "assert", "code": "def f(x): return x", "tests": ["assert f(1) == 2"]},
        {
            "id": "c",
            "format": "apps_stdio",
            "code": "print(int(input()) * 2)",
            "tests": [json.dumps({"input": "21\n", "output": "42\n"})],
        },
    ]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "sub" / "out.jsonl"
    p = subprocess.run(
        [sys.executable, "-m", "gift.execute", str(inp), str(out), "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    res = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [r["id"] for r in res] == ["a", "b", "c"]
    assert [r["status"] for r in res] == ["passed", "failed", "passed"]
    assert set(res[0]) == {"id", "passed", "status", "tests_passed", "tests_total", "duration_s", "detail"}
    assert os.listdir(out.parent) == ["out.jsonl"]  # no temp file left beside it


def test_process_count_limited_for_unprivileged_uid(info):
    if not info["uid"]:
        pytest.skip("candidates run as root here: RLIMIT_NPROC is not enforced (audit hook blocks fork)")
    code = textwrap.dedent("""
        import threading, time
        ev = threading.Event()
        started = 0
        try:
            for _ in range(40):
                threading.Thread(target=ev.wait, daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        ev.set()
    """)
    r = execute_one({"id": "nproc", "format": "assert", "code": code, "tests": ["assert 0 < started < 40, started"]})
    assert r["status"] == "passed", r


# ------------------------------------------------- concurrency of blocked candidates
_SPIN = textwrap.dedent("""
    import time
    def f():
        t = time.process_time()
        while time.process_time() - t < 0.6:
            pass
        return 1
""")
_BLOCKERS = [
    "import time\ntime.sleep(60)\n",
    "import threading\nl = threading.Lock()\nl.acquire()\nl.acquire()\n",
    "import threading\nthreading.Event().wait()\n",
]


def _concurrency_rows():
    rows = [
        {"id": f"block{i}", "format": "assert", "code": _BLOCKERS[i % 3], "tests": ["assert True"], "timeout_s": 1}
        for i in range(8)
    ]
    rows += [
        {"id": f"cpu{i}", "format": "assert", "code": _SPIN, "tests": ["assert f() == 1"], "timeout_s": 1}
        for i in range(3)
    ]
    rows += [
        {
            "id": f"ok{i}",
            "format": "assert",
            "code": "def g(x): return x",
            "tests": ["assert g(1) == 1", "assert g(2) == 3"][: 1 + i % 2],
        }
        for i in range(20)
    ]
    return rows


def test_blocked_candidates_overlap_and_cpu_heavy_correct_one_still_passes(info):
    rows = _concurrency_rows()
    t = time.monotonic()
    res = execute(rows, workers=2)
    elapsed = time.monotonic() - t
    by = {r["id"]: r for r in res}
    for i in range(8):
        assert by[f"block{i}"]["status"] == "timeout", by[f"block{i}"]
    for i in range(3):  # needs 0.6 s of CPU within a 1 s timeout, next to the others
        assert by[f"cpu{i}"]["status"] == "passed", by[f"cpu{i}"]
    for i in range(20):
        assert by[f"ok{i}"]["status"] == ("passed" if i % 2 == 0 else "failed"), by[f"ok{i}"]
    if info.get("slots", 1) > 1:
        # serially the 8 blocked rows alone take 8 x 1 s / 2 workers = 4 s
        assert elapsed < 3.5, elapsed


def test_concurrency_does_not_change_verdicts(monkeypatch):
    from gift.sandbox import pool as ex

    rows = _concurrency_rows()
    conc = execute(rows, workers=2)
    monkeypatch.setenv("GIFT_SANDBOX_SLOTS", "1")
    ex.shutdown()
    try:
        assert sandbox_info()["slots"] == 1
        serial = execute(rows, workers=2)
    finally:
        monkeypatch.delenv("GIFT_SANDBOX_SLOTS")
        ex.shutdown()

    def key(r):
        return (r["id"], r["status"], r["passed"], r["tests_passed"], r["tests_total"])

    assert [key(r) for r in conc] == [key(r) for r in serial]


def test_heavy_rows_routed_to_a_numpy_server_light_rows_elsewhere():
    from gift.sandbox import pool as ex

    rows = [
        {
            "id": "np",
            "format": "assert",
            "code": "import numpy as np\ndef f():\n    return int(np.arange(4).sum())",
            "tests": ["assert f() == 6"],
        }
    ]
    rows += [
        {"id": f"l{i}", "format": "assert", "code": "def f(): return 6", "tests": ["assert f() == 6"]}
        for i in range(10)
    ]
    res = execute(rows, workers=2)
    assert all(r["status"] == "passed" for r in res), res
    kinds = sorted(bool(s.info.get("numpy")) for s in ex._POOL.servers)
    n = 2 * ex.SERVERS_PER_CORE
    assert kinds == [False] * (n - 1) + [True], kinds  # one heavy (numpy+pandas) server, the rest light


def test_results_are_matched_to_rows_under_pipelining():
    rows = [
        {
            "id": f"r{i}",
            "format": "assert",
            "code": f"def f(): return {i}",
            "tests": [f"assert f() == {i}"],
            "timeout_s": 2,
        }
        for i in range(60)
    ]
    rows[7]["code"] = "import time\ntime.sleep(0.3)\n" + rows[7]["code"]
    res = execute(rows, workers=2)
    assert [r["id"] for r in res] == [r["id"] for r in rows]
    assert all(r["status"] == "passed" for r in res), [r for r in res if r["status"] != "passed"]


# ------------------------------------------------------------------ evalplus format
def _plus_test(inp, exp, **kw):
    return json.dumps({"input": inp, "expected": exp, **kw})


def test_evalplus_format_bad_rows_and_tampering():
    rows = [
        {"id": "no-ep", "format": "evalplus", "code": "def f(x): return x", "tests": [_plus_test([1], 1)]},
        {
            "id": "no-input",
            "format": "evalplus",
            "entry_point": "f",
            "code": "def f(x): return x",
            "tests": [json.dumps({"expected": 1})],
        },
        # a return value whose __eq__ / __hash__ lie, and an int subclass: rejected by the strict encoding
        {
            "id": "eq",
            "format": "evalplus",
            "entry_point": "f",
            "tests": [_plus_test([1], 1)],
            "code": (
                "class E(int):\n    def __eq__(s, o): return True\n    __hash__ = int.__hash__\ndef f(x): return E(2)"
            ),
        },
        # forging a record line from inside the candidate is detected
        {
            "id": "forge",
            "format": "evalplus",
            "entry_point": "f",
            "tests": [_plus_test([1], 5)],
            "code": "import sys\ndef f(x):\n    sys.audit('gift.rec', 'T 0 ok 5 0.0 0.0')\n    return 5",
        },
        {
            "id": "ok",
            "format": "evalplus",
            "entry_point": "f",
            "tests": [_plus_test([1], 5)],
            "code": "def f(x): return 5",
        },
    ]
    res = {r["id"]: r for r in execute(rows, workers=2)}
    assert res["no-ep"]["status"] == "error" and "bad row" in res["no-ep"]["detail"]
    assert res["no-input"]["status"] == "error"
    assert not res["eq"]["passed"]
    assert not res["forge"]["passed"] and "verification" in res["forge"]["detail"]
    assert res["ok"]["passed"]


def test_evalplus_format_returns_outputs_without_expected():
    from gift.execute import decode_value

    row = {
        "id": "c",
        "format": "evalplus",
        "entry_point": "f",
        "return_outputs": True,
        "stop_first": False,
        "code": "def f(x):\n    if x == 2: raise KeyError(x)\n    return (x, {x}, complex(x, 1))",
        "tests": [json.dumps({"input": [1]}), json.dumps({"input": [2]}), json.dumps({"input": [3]})],
    }
    r = execute_one(row)
    assert r["outputs"][1] is None and r["status"] == "failed"
    assert decode_value(r["outputs"][0]) == (1, {1}, complex(1, 1))
    assert decode_value(r["outputs"][2]) == (3, {3}, complex(3, 1))
    assert r["times"][0][0] >= 0 and r["times"][0][1] >= 0


def test_a_lost_server_is_replaced_and_its_rows_rerun():
    """The runner survives the loss of a fork server (here killed from outside, as the OOM killer
    would): the rows that were in flight are re-run on a fresh server and get their real verdict,
    none is reported `killed` for being a bystander."""
    from gift.sandbox import pool as ex

    ex.shutdown()
    rows = [
        {
            "id": f"s{i}",
            "format": "assert",
            "timeout_s": 5,
            "code": f"import time\ntime.sleep(0.4)\ndef f(): return {i}",
            "tests": [f"assert f() == {i if i % 3 else -1}"],
        }
        for i in range(48)
    ]
    victims = []

    def kill_one():
        time.sleep(0.5)
        s = ex._POOL.servers[0]
        victims.append(s.proc.pid)
        os.killpg(s.proc.pid, 9)

    t = threading.Thread(target=kill_one)
    t.start()
    res = execute(rows, workers=2)
    t.join()
    assert victims and all(s.proc.pid not in victims for s in ex._POOL.servers)
    assert [r["status"] for r in res] == ["failed" if i % 3 == 0 else "passed" for i in range(48)], res


def test_server_death_cause_names_the_signal():
    from gift.sandbox import pool as ex

    execute_one({"id": "w", "format": "assert", "code": "def f(): return 1", "tests": ["assert f() == 1"]})
    s = ex._POOL.servers[0]
    os.killpg(s.proc.pid, 9)
    assert s.death_cause().startswith("killed by SIGKILL")
    ex.shutdown()


def test_a_spinning_candidate_does_not_hold_back_the_queue():
    """With one server, short candidates queued behind a program that spins until its time limit
    run while it spins (they share the core with it; its deadline is extended by the time it
    waited for a CPU, so it is still charged only its own running time)."""
    if sandbox_info()["slots"] < 2:
        pytest.skip("one candidate per server here (no unprivileged uid or no schedstat): nothing overlaps")
    # the spinner ends >= 5 s after the start whatever the load (its deadline is only ever extended);
    # queued behind it, the short rows would start after that
    t_limit = time.time() + 4.5
    rows = [
        {"id": "spin", "format": "assert", "code": "while True:\n    pass", "tests": ["assert True"], "timeout_s": 5}
    ]
    rows += [
        {
            "id": f"q{i}",
            "format": "assert",
            "code": "import time\nT = time.time()",
            "tests": [f"assert T < {t_limit!r}"],
            "timeout_s": 5,
        }
        for i in range(12)
    ]
    res = execute(rows, workers=1)
    assert res[0]["status"] == "timeout" and res[0]["duration_s"] >= 5.0, res[0]
    assert all(r["status"] == "passed" for r in res[1:]), [r for r in res[1:] if not r["passed"]]


def test_queued_rows_move_to_an_idle_server():
    """Two long candidates fill one server's admission (at most two busy per server); a short row queued
    behind them is given back and run by the idle second server instead of waiting for them."""
    if sandbox_info()["slots"] < 2:
        pytest.skip("one candidate per server here (no unprivileged uid or no schedstat): nothing overlaps")
    # each long row needs 3 s of CPU, so it ends >= 3 s after the start whatever the load
    spin = "import time\n_t = time.process_time()\nwhile time.process_time() - _t < 3.0:\n    pass\ndef f(): return 1"
    t_limit = time.time() + 2.8
    rows = [
        {"id": f"L{i}", "format": "assert", "code": spin, "tests": ["assert f() == 1"], "timeout_s": 10}
        for i in range(2)
    ]
    rows.append(
        {
            "id": "S",
            "format": "assert",
            "code": "import time\nT = time.time()",
            "tests": [f"assert T < {t_limit!r}"],
            "timeout_s": 5,
        }
    )
    res = execute(rows, workers=2)
    assert [r["status"] for r in res] == ["passed", "passed", "passed"], res


def test_a_checkout_under_tmp_keeps_full_isolation(tmp_path):
    """/tmp is covered by a private tmpfs in the sandbox: a clone (or venv) living under /tmp is
    bind-mounted back, so it gets the same isolation as one elsewhere (it used to fall back to `net`)."""
    here = sandbox_info()
    if here["isolation"] != "net+pid+mount":
        pytest.skip(f"this machine gives {here['isolation']} isolation")
    assert str(tmp_path).startswith(("/tmp/", "/var/tmp/")), tmp_path
    shutil.copytree(ROOT / "gift", tmp_path / "gift", ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "from gift.execute import sandbox_info, execute_one\n"
        "import json\n"
        "r = execute_one({'id': 'x', 'format': 'assert', 'code': 'def f(): return 1', 'tests': ['assert f() == 1']})\n"
        "print(json.dumps([sandbox_info(), r]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info, res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["isolation"] == "net+pid+mount" and info["uid"] and info["slots"] > 1, info
    assert res["status"] == "passed"


def test_servers_preimport_the_modules_a_batch_mentions():
    """A light server holds only what the batch's code names (each held module makes every
    fork and exit dearer); a module it does not hold is still importable by a candidate."""
    from gift.sandbox import pool as ex

    ex.shutdown()
    names = "('dec' + 'imal', 'insp' + 'ect', 'uu' + 'id')"  # not written out: they would be matched
    probe = f"import sys\nHELD = sorted(m for m in {names} if m in sys.modules)\n"
    r = execute_one(
        {
            "id": "none",
            "format": "assert",
            "code": probe + "import inspect as I\n",
            "tests": ["assert HELD == ['inspect'], HELD", "assert I.isfunction(lambda: 0)"],
        }
    )
    assert r["status"] == "passed", r
    ex.shutdown()
    r = execute_one(
        {
            "id": "bare",
            "format": "assert",
            "code": probe + "import importlib\nU = importlib.import_module('u' + 'uid')\n",
            "tests": ["assert HELD == [], HELD", "assert len(str(U.UUID(int=1))) == 36"],
        }
    )
    assert r["status"] == "passed", r
    assert ex._needed_preimports(
        [
            {"code": "from decimal import Decimal", "tests": ["import numpy"]},
            {"code": "import pandas as pd", "format": "evalplus", "tests": ["typing"]},
        ]
    ) == {"decimal", "numpy", "pandas"}
    ex.shutdown()
