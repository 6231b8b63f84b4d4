"""The shape of the package: the sandbox's child side imports only the standard library, no module is too
long to find one's way in, and no two modules import each other (fast: files are parsed, one small
subprocess)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GIFT = ROOT / "gift"
CHILD = GIFT / "sandbox" / "child"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every gift module ``path`` imports, at the top or inside a function (resolved, relative ones too)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    modules = {module_name(p) for p in GIFT.rglob("*.py")}
    return {m for m in out if m in modules and m != me}


def test_the_child_side_imports_only_the_standard_library():
    for path in CHILD.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name}: imports from outside child/"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert all(n.split(".")[0] in sys.stdlib_module_names for n in names), (path.name, names)
    # and as the fork server runs it: this folder's parent as the only import root, nothing of gift loaded
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import child.server, child.runner, child.codec, child.oracle, "
        "child.hook, child.candidates, child.preload; "
        "bad = sorted(m for m in sys.modules if m == 'gift' or m.startswith('gift.')); print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(CHILD.parent)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("folder, limit", [(GIFT, 600), (GIFT / "sandbox", 400), (GIFT / "serve", 400)])
def test_no_file_is_too_long(folder, limit):
    long = {str(p.relative_to(ROOT)): n for p in folder.rglob("*.py") if (n := len(p.read_text().splitlines())) > limit}
    assert long == {}


def test_no_two_modules_import_each_other():
    graph = {module_name(p): imports(p) for p in GIFT.rglob("*.py")}
    pairs = sorted(
        {
            tuple(sorted((a, b)))
            for a, deps in graph.items()
            for b in deps
            if a in graph.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + "."))
        }
    )
    assert pairs == []


def test_the_backends_know_no_server():
    """Serving is one room: only gift.serve knows servers; the backends below it never import it."""
    up = {
        module_name(p): sorted(m for m in imports(p) if m == "gift.serve" or m.startswith("gift.serve."))
        for p in (GIFT / "backends").rglob("*.py")
    }
    assert {m: deps for m, deps in up.items() if deps} == {}
    known = {module_name(p) for p in GIFT.rglob("*.py") if "gift.serve.manager" in imports(p)}
    assert known <= {"gift.serve", "gift.serve.backend", "gift.serve.watchdog"}, known


def test_the_old_engine_name_still_works(tmp_path):
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"id": "a", "code": "def f(): return 1", "tests": ["assert f() == 1"], "format": "assert"}\n')
    for mod in ("gift.execute", "gift.sandbox"):
        out = tmp_path / f"{mod}.jsonl"
        proc = subprocess.run(
            [sys.executable, "-m", mod, str(rows), str(out), "--workers", "1"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr
        assert '"passed": true' in out.read_text()
