"""The package's layers, checked from its import statements: no import cycle, no upward import,
and no import of a gpo_local module inside a function (such an import hides a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gpo_local"

# Lowest first; a module may import its own layer and the layers below it. Each subpackage's
# __init__ docstring says what it holds and what it may import.
LAYERS = [
    ("core", {"gpo_local.core", "gpo_local.errors", "gpo_local.stats"}),
    ("tasks", {"gpo_local.tasks"}),
    ("runs", {"gpo_local.runs"}),
    ("backends", {"gpo_local.backends", "gpo_local.testing"}),
    ("replies", {"gpo_local.replies"}),
    ("algorithm", {"gpo_local.algorithm"}),
    ("methods", {"gpo_local.methods"}),
    ("app", {"gpo_local.app", "gpo_local.quality", "gpo_local", "gpo_local.__main__"}),
]
# `import gpo_local` stays light: the package's __init__ reaches the Python API through a
# module __getattr__, the one import inside a function that names a gpo_local module.
LAZY_ALLOWED = {"gpo_local"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    best, rank = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > rank:
                best, rank = index, len(prefix)
    assert best is not None, f"{module} belongs to no declared layer"
    return best


def imported_modules(module: str, node: ast.AST) -> list[str]:
    """The gpo_local modules an import statement loads (a `from pkg import sub` loads pkg.sub)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        assert node.level == 0, f"{module}: relative import (use gpo_local.<layer>... absolute imports)"
        base = node.module or ""
        targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target.startswith("gpo_local") and target != module:
            out.append(target)
    return out


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    graph, inner = {m: set() for m in MODULES}, []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        in_function = {
            id(i) for f in functions for i in ast.walk(f) if isinstance(i, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = imported_modules(module, node)
                graph[module].update(targets)
                if targets and id(node) in in_function and module not in LAZY_ALLOWED:
                    inner.append(f"{module}:{node.lineno} imports {', '.join(targets)} inside a function")
    return graph, inner


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_upward_import():
    graph, _ = import_graph()
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in graph.items()
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert upward == []


def test_no_import_inside_a_function():
    _, inner = import_graph()
    assert inner == []


def test_no_import_cycle():
    graph, _ = import_graph()
    # A package's __init__ is imported before its submodules; an edge from a submodule to its
    # own package's __init__ is a real dependency, so it counts.
    state, stack, cycles = {}, [], []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("package", sorted({m for m in MODULES if (MODULES[m].name == "__init__.py")}))
def test_each_subpackage_says_what_it_holds(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert doc and len(doc.split()) >= 12, (
        f"{package}/__init__.py needs a docstring: what it holds, what it imports"
    )
