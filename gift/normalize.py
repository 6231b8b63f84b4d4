"""AST-normalised code with canonical names (v0, v1, ...): solutions that differ only in naming, comments,
docstrings or layout compare equal (the analyses count distinct solutions with it)."""

from __future__ import annotations

import ast

# ----------------------------------------------------------------------------------------------------
# Code normalisation
# ----------------------------------------------------------------------------------------------------

_BINDING_CTX = (ast.Store, ast.Del)


def _strip_docstrings(tree: ast.AST) -> None:
    """Remove the docstring of the module and of every function and class (in place)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body.pop(0)
                if not body and not isinstance(node, ast.Module):
                    body.append(ast.Pass())


def _bound_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names the program binds itself (functions, classes, arguments, assigned variables, loop / with /
    except / comprehension / match targets) and names bound by imports (kept as they are)."""
    bound: set[str] = set()
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, _BINDING_CTX):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.MatchAs) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                imported.add((a.asname or a.name).split(".")[0])
    return bound - imported, imported


class _Renamer(ast.NodeTransformer):
    """Rename every occurrence of the program's own names to v0, v1, ... in order of first appearance
    (a depth-first walk over the fields in source order)."""

    def __init__(self, names: set[str]):
        self.names = names
        self.mapping: dict[str, str] = {}
        self.params: dict[str, set[str]] = {}  # function name -> its parameter names (for keyword args)

    def _new(self, name: str) -> str:
        if name not in self.names:
            return name
        if name not in self.mapping:
            self.mapping[name] = f"v{len(self.mapping)}"
        return self.mapping[name]

    def _visit_def(self, node):
        params = {a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)}
        self.params[node.name] = params
        node.name = self._new(node.name)
        return self.generic_visit(node)

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def visit_ClassDef(self, node):
        node.name = self._new(node.name)
        return self.generic_visit(node)

    def visit_arg(self, node):
        node.arg = self._new(node.arg)
        return self.generic_visit(node)

    def visit_Name(self, node):
        node.id = self._new(node.id)
        return node

    def visit_ExceptHandler(self, node):
        if node.name:
            node.name = self._new(node.name)
        return self.generic_visit(node)

    def visit_Global(self, node):
        node.names = [self._new(n) for n in node.names]
        return node

    visit_Nonlocal = visit_Global

    def visit_MatchAs(self, node):
        if node.name:
            node.name = self._new(node.name)
        return self.generic_visit(node)

    def visit_MatchStar(self, node):
        if node.name:
            node.name = self._new(node.name)
        return node

    def visit_Call(self, node):
        # keyword arguments of calls to the program's own functions name that function's parameters
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        params = self.params.get(fname, set()) if fname else set()
        self.generic_visit(node)
        for kw in node.keywords:
            if kw.arg is not None and kw.arg in params:
                kw.arg = self._new(kw.arg)
        return node


def _whitespace_normalize(code: str) -> str:
    return "\n".join(" ".join(line.split()) for line in code.splitlines() if line.strip())


def normalize_code(code: str) -> str:
    """Canonical text of ``code``: parsed, docstrings and comments dropped, the program's own names
    (functions, classes, arguments, variables; not imports, attributes or builtins it does not rebind)
    renamed v0, v1, ... in order of first appearance, printed with ``ast.unparse``. Code that does
    not parse falls back to its whitespace-normalised text (each line's runs of blanks collapsed,
    blank lines dropped)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return _whitespace_normalize(code)
    _strip_docstrings(tree)
    names, _ = _bound_names(tree)
    # Class-level pre-pass so calls that come before a function's definition still see its parameters.
    renamer = _Renamer(names)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            renamer.params.setdefault(
                node.name, {a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)}
            )
    tree = renamer.visit(tree)
    ast.fix_missing_locations(tree)
    try:
        return ast.unparse(tree)
    except Exception:  # pragma: no cover - unparse of a parsed tree should not fail
        return _whitespace_normalize(code)
