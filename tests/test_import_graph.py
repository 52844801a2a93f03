"""The package's layout: no two modules import each other, even lazily, and none is over 400 lines.

A cycle that only works because one side imports inside a function is still a cycle for a reader
(which module is the lower layer?) and for a refactor (move one import to the top and it breaks).
Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies, and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "alignment_tax"
MAX_LINES = 400


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (n for child in node.orelse for n in _imports_in(child))
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (a submodule named in ``from pkg import sub`` counts as
    ``pkg.sub``; a module's own ancestors, which Python imports first anyway, do not count)."""

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
                ]
            root = name.split(".")[0]
            for target in targets:
                found = owner(target) if target.split(".")[0] == root else None
                if found and found != name and not name.startswith(found + "."):
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_only_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_reads_lazy_relative_and_submodule_imports(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/data/__init__.py": "from pkg.data.fields import NAME\n",
        "pkg/data/fields.py": "NAME = 1\n",
        "pkg/data/squad.py": "from pkg.data import fields\nfrom . import fields as again\n",
        "pkg/engines.py": "def serve():\n    from pkg.served import run\n",
        "pkg/served.py": "import json\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.engines import serve\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    graph = import_graph(module_files(tmp_path / "pkg"))
    assert graph["pkg.data.squad"] == {"pkg.data.fields"}  # the submodule, not its package
    assert graph["pkg.data"] == {"pkg.data.fields"}
    assert graph["pkg.engines"] == {"pkg.served"}  # an import inside a function counts
    assert graph["pkg.served"] == set()  # one under TYPE_CHECKING does not; json is not ours
    assert cycles(graph) == []
    (tmp_path / "pkg/served.py").write_text("from pkg.engines import serve\n", encoding="utf-8")
    assert cycles(import_graph(module_files(tmp_path / "pkg"))) == [["pkg.engines", "pkg.served"]]


def test_no_import_cycle_in_the_package():
    found = cycles(import_graph(module_files()))
    assert found == [], "modules that import each other: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
