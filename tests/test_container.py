"""The container image as a user builds and runs it (docs/environments.md): scripts/container/build.sh builds
the CPU image from the Dockerfile with podman or docker, the tiny workflow runs inside it with results/
mounted from here and writes its main table, the engine's own sandbox tests (tests/test_execute.py, the
hostile programs among them) pass inside it with the sandbox's namespaces and without them (the fallback
of docs/execution.md, with its warning), and the CUDA target's pip install resolves in the same base.

Slow: the image is built from scratch on a fresh machine (base image from Debian packages where no registry
answers); CI installs podman first (.ci/run), and in CI a missing engine fails instead of skipping."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts" / "container"
TAG = "localhost/gift-pipeline:test-cpu"  # not the published name: a test build never replaces a user's image
METHODS = ["Base model", "RFT", "RFT+RD", "GiFT w/o PPL selection", "GiFT", "gift_T1"]


def _engine() -> str | None:
    """The engine the scripts will use (engine.sh's choice), if it can build here."""
    want = os.environ.get("GIFT_CONTAINER_ENGINE")
    for name in [want] if want else ["podman", "docker"]:
        if shutil.which(name):
            if name == "docker" and subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
                return None  # a client without a daemon
            return name
    return None


ENGINE = _engine()
if ENGINE is None and os.environ.get("CI"):
    pytest.fail("no container engine: .ci/run installs podman before the tests", pytrace=False)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def in_image(results: Path, *command: str, namespaces: bool = False, host_pip: bool = False, timeout=900):
    extra = ["--sandbox-namespaces"] if namespaces else []
    extra += ["--host-pip"] if host_pip else []
    return _run([str(SCRIPTS / "run.sh"), "--image", TAG, "--results", str(results), *extra, "--", *command], timeout)


def _cuda_install_command() -> tuple[list[str], dict]:
    """The CUDA stage's `pip install -r ...` (its build arguments' defaults filled in) and those defaults."""
    text = (ROOT / "Dockerfile").read_text()
    stage = text[text.index(" AS cuda") :].split("\nFROM ")[0]
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)", stage, re.M))
    logical = re.sub(r"\\\n\s*", " ", stage)
    installs = [
        part.strip()
        for line in logical.splitlines()
        if line.startswith("RUN ")
        for part in line[4:].split("&&")
        if part.strip().startswith("pip install") and "-r " in part and "--no-deps" not in part
    ]
    assert len(installs) == 1, installs
    cmd = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], installs[0]).replace('"', "").split()
    assert cmd[:2] == ["pip", "install"]
    return cmd, defaults


@pytest.fixture(scope="session")  # the session's: the CUDA resolution it starts runs on until the last test
def image(tmp_path_factory):
    if ENGINE is None:  # every test that builds or runs the image skips; the Dockerfile's own checks run
        pytest.skip("neither podman nor docker (with a running daemon) is installed")
    t0 = time.monotonic()
    proc = _run([str(SCRIPTS / "build.sh"), "--tag", TAG], timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == TAG
    print(f"image built in {time.monotonic() - t0:.0f} s: {proc.stdout.strip().splitlines()[-2]}")
    # the CUDA target's resolution (network-bound, ~3 min) runs in the background while the rest of the suite
    # computes: its check comes last in the session (tests/conftest.py)
    out = tmp_path_factory.mktemp("cuda")
    cmd, _ = _cuda_install_command()
    pip = [*cmd[:2], "--dry-run", "--ignore-installed", "--quiet", "--report", "results/cuda-report.json", *cmd[2:]]
    run = [str(SCRIPTS / "run.sh"), "--image", TAG, "--results", str(out), "--host-pip", "--", *pip]
    log = open(out / "resolve.log", "w+")
    CUDA["proc"], CUDA["out"], CUDA["log"] = (
        subprocess.Popen(run, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL),
        out,
        log,
    )
    yield TAG
    if CUDA["proc"].poll() is None:
        CUDA["proc"].kill()
    log.close()


CUDA: dict = {}  # the background resolution of the CUDA target, started once the image is built


def test_the_image_holds_cpu_torch_and_the_pinned_requirements(image, tmp_path):
    code = (
        "import json, importlib.metadata as m, torch; "
        "print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
        "'dists': {d.metadata['Name'].lower(): d.version for d in m.distributions()}}))"
    )
    proc = in_image(tmp_path, "python", "-c", code, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["cuda"] is None and got["torch"].endswith("+cpu"), got["torch"]
    assert not [d for d in got["dists"] if d.startswith("nvidia-")]
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line.strip())
        if m:
            name = re.sub(r"[_.]+", "-", m.group(1).lower())
            assert got["dists"].get(name, "").split("+")[0] == m.group(2), (name, got["dists"].get(name))


def test_the_workflow_runs_in_the_image_up_to_the_chains_first_tests(image, tmp_path):
    """The tiny workflow inside the image, up to the Gibbs chain's first tested codes (data, the model's
    conversion, seed descriptions, sampling, the sandboxed tests): the image's packages and sandbox doing the
    workflow's work. The rest of the workflow is the same code on the same packages (tests/test_workflow.py
    runs all of it outside the image), so it is left out for the test suite's time."""
    results = tmp_path / "results"
    target = "results/tiny/gibbs/iter0/tests.jsonl"
    t0 = time.monotonic()
    proc = in_image(
        results, "snakemake", target, "--cores", "all", "--configfile", "tests/configs/tiny.yaml", timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"tiny workflow's first chain step in the image: {time.monotonic() - t0:.0f} s")
    r = results / "tiny"
    rows = [json.loads(line) for line in (r / "gibbs" / "iter0" / "tests.jsonl").read_text().splitlines()]
    assert rows and all("passed" in row for row in rows), rows[:2]
    assert not (r / "tables").exists()  # only what the target needs ran
    # the plain run gives the container no CAP_SYS_ADMIN: the sandbox fell back and said so in the log
    log = (r / "logs" / "run_tests" / "gibbs_iter0.log").read_text()
    assert re.search(r"sandbox isolation is '(net|none)', not 'net\+pid\+mount' \(.+\)", log), log[-2000:]


# the tests of tests/test_execute.py that judge containment (the hostile programs first) and the real
# programs next to them; not its timing-sensitive concurrency tests, which measure speed, not containment
SANDBOX_TESTS = [
    "test_hostile",  # test_hostile_contained[*], the batch does not hang, the runner survives
    "test_no_network",
    "test_environment_is_scrubbed",
    "test_files_written_to_cwd_are_removed_and_escape_prevented",
    "test_process_count_limited_for_unprivileged_uid",
    "test_a_checkout_under_tmp_keeps_full_isolation",
    "test_runner_survives_after_hostile",
    "test_mbpp_rows_pass_with_setup_code",
    "test_bad_rows_are_reported_not_raised",
    "test_cli_end_to_end",
]


def _junit(path: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[case.get("name")] = kinds[0] if kinds else "passed"
    return out


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback"])
def test_engine_sandbox_tests_pass_in_the_image(image, tmp_path, namespaces):
    """tests/test_execute.py as the image holds it, run inside the image: every hostile program is
    contained, with the sandbox's namespaces (CAP_SYS_ADMIN) and without them (the fallback)."""
    info = "import json; from gift.sandbox import sandbox_info; print(json.dumps(sandbox_info()))"
    proc = in_image(
        tmp_path,
        "sh",
        "-c",
        f"python -c '{info}' && python -m pytest -q -p no:cacheprovider -rs tests/test_execute.py "
        f"-k '{' or '.join(SANDBOX_TESTS)}' --junitxml=results/junit.xml",
        namespaces=namespaces,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    sandbox = json.loads(proc.stdout.splitlines()[0])
    assert sandbox["uid"] != 0, sandbox  # candidates run as a non-root uid either way
    verdicts = _junit(tmp_path / "junit.xml")
    hostile = [n for n in verdicts if n.startswith("test_hostile_contained[")]
    assert len(hostile) > 20 and all(verdicts[n] == "passed" for n in hostile), verdicts
    assert set(SANDBOX_TESTS[1:]) <= set(verdicts), set(SANDBOX_TESTS[1:]) - set(verdicts)  # none renamed away
    if namespaces:
        assert sandbox["isolation"] == "net+pid+mount" and sandbox["private_tmp"], sandbox
        assert "sandbox isolation is" not in proc.stderr
        assert [n for n, v in verdicts.items() if v != "passed"] == []
    else:
        assert sandbox["isolation"] in ("net", "none"), sandbox
        assert f"sandbox isolation is '{sandbox['isolation']}', not 'net+pid+mount'" in proc.stderr
        # what the fallback cannot give (docs/execution.md): the full isolation of a checkout under /tmp
        assert {n for n, v in verdicts.items() if v != "passed"} == {"test_a_checkout_under_tmp_keeps_full_isolation"}


def test_the_cuda_target_resolves(image):
    """The CUDA stage's pip install, with its build arguments' defaults, resolves (metadata only) with
    the CPU image's Python, the same base and platform the CUDA image is built on (started by `image`)."""
    _, defaults = _cuda_install_command()
    rc = CUDA["proc"].wait(timeout=1200)
    CUDA["log"].seek(0)
    assert rc == 0, CUDA["log"].read()[-6000:]
    chosen = {
        i["metadata"]["name"].lower(): i["metadata"]["version"]
        for i in json.loads((CUDA["out"] / "cuda-report.json").read_text())["install"]
    }
    pins = dict(re.findall(r"^([\w.-]+)(?:\[[^]]*\])?==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert chosen["torch"] == pins["torch"]  # PyPI's CUDA build: no +cpu
    assert chosen["vllm"] == defaults["VLLM_VERSION"] and chosen["deepspeed"] == defaults["DEEPSPEED_VERSION"]
    assert any(n.startswith("nvidia-") for n in chosen), sorted(chosen)
    print(f"CUDA target resolves: {len(chosen)} packages")


def test_the_cuda_target_installs_a_c_compiler():
    """Triton compiles its CUDA launcher with `cc` on vLLM's first kernel compile: the CUDA stage installs
    gcc (`cc`) with the C library's headers before anything else, and its build fails without `cc`. Read
    from the Dockerfile (the CUDA image is not built here)."""
    text = (ROOT / "Dockerfile").read_text()
    stage = re.sub(r"\\\n\s*", " ", text[text.index(" AS cuda") :].split("\nFROM ")[0])
    runs = [line[4:] for line in stage.splitlines() if line.startswith("RUN ")]
    apt = [p.split() for p in runs[0].split("&&") if "apt-get install" in p]
    assert apt and {"gcc", "libc6-dev"} <= set(apt[0]), runs[0]  # the stage's first RUN, before pip
    assert any(p.strip() == "cc --version" for p in runs[-1].split("&&")), runs[-1]
    base = text[text.index(" AS base") : text.index(" AS cuda")]
    assert "gcc" not in base  # the CPU image stays without a compiler
