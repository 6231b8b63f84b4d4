"""Docs that stand on their own: README.md, docs/ and the docstrings of gift/ name no absolute path of one
machine (a home folder, /tmp/..., a data folder) and no file that a clone of the repository does not have
(a relative link or a repository path that is not tracked, or a folder outside the repository)."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# absolute paths of one machine: home folders, temp folders, the usual data mounts
MACHINE_PATH = re.compile(
    r"(?<![\w.:/~$-])((?:/work|/root|/home/\w+|/Users/\w+|/tmp|/var/tmp|/data/shared)/[^\s`)'\"\]>|]*)"
)
MACHINE_PATH_BARE = re.compile(r"(?<![\w.:/~$-])(/root|/home/[a-z]\w*)(?![\w/])")
# project defaults that are documented paths (a script's default scratch folder), not one machine's
ALLOWED_PATHS = {"/var/tmp/gift-slurm"}
TOP_DIRS = (
    *("benchmarks", "config", "docs", "envs", "gift", "profiles"),
    *("report", "rules", "schemas", "scripts", "tests"),
)
REPO_PATH = re.compile(r"(?<![\w./<>{}*$-])((?:\.\./)*(?:" + "|".join(TOP_DIRS) + r"|shared)/[\w./-]*\w)(?![\w<{*-])")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _tracked():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = set(out)
    dirs = {str(parent) for f in out for parent in Path(f).parents}
    return files, dirs


def _docstrings(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


def documents(root=ROOT):
    """(name, folder the text's relative links start from, text) for README.md, docs/**.md and gift's docstrings."""
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        yield str(path.relative_to(root)), path.parent, path.read_text(encoding="utf-8")
    for path in sorted((root / "gift").rglob("*.py")):
        for line, doc in _docstrings(path):
            yield f"{path.relative_to(root)}:{line}", root, doc


def findings(name, base, text, files, dirs, root=ROOT):
    """One line per machine path or missing-file reference in `text`."""
    out = []
    for rx in (MACHINE_PATH, MACHINE_PATH_BARE):
        for m in rx.finditer(text):
            found = m.group(1).rstrip(".,;:")
            if found not in ALLOWED_PATHS:
                out.append(f"{name}: absolute machine path {found!r}")
    for m in REPO_PATH.finditer(text):
        ref = m.group(1).rstrip(".")
        if ref.startswith(("..", "shared/")):
            out.append(f"{name}: reference outside the repository {ref!r}")
        elif ref not in files and ref not in dirs:
            out.append(f"{name}: {ref!r} is not a file or folder of the repository")
    for m in LINK.finditer(text):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        resolved = (base / target).resolve()
        try:
            rel = str(resolved.relative_to(root))
        except ValueError:
            out.append(f"{name}: link {target!r} leaves the repository")
            continue
        if rel not in files and rel not in dirs:
            out.append(f"{name}: link {target!r} names no file of the repository")
    return out


def test_docs_name_no_machine_path_and_no_missing_file():
    files, dirs = _tracked()
    problems = [line for doc in documents() for line in findings(*doc, files, dirs)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("see `/work/shared/data/mbppplus/MbppPlus-v0.2.0.jsonl`", "absolute machine path"),
        ("the interpreter under /root/.venv", "absolute machine path"),
        ("files in /home/alice/gift", "absolute machine path"),
        ("written to /tmp/run1/out.json", "absolute machine path"),
        ("see shared/notes/paper-facts.md", "outside the repository"),
        ("data from ../shared/data", "outside the repository"),
        ("run `scripts/no_such_script.py`", "is not a file or folder"),
        ("[facts](docs/no-such-page.md)", "names no file"),
        ("[up](../../elsewhere.md)", "leaves the repository"),
    ],
)
def test_the_check_finds_each_kind_of_mistake(text, expected):
    files, dirs = _tracked()
    out = findings("probe.md", ROOT, text, files, dirs)
    assert any(expected in line for line in out), out


def test_the_check_passes_what_a_clone_has():
    files, dirs = _tracked()
    text = (
        "see [paper facts](docs/paper-facts.md), `gift/config.py`, `results/<exp>/tables/main.md`, "
        "`config/paper/<model>--<dataset>.yaml`, https://arxiv.org/abs/2502.11466, `/tmp`, `/var/tmp/gift-slurm`"
    )
    assert findings("probe.md", ROOT, text, files, dirs) == []
