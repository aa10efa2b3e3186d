"""No import cycles in tray_app: every import is a dependency, wherever it stands in a module (at
the top, inside a function, under `TYPE_CHECKING`), and no module may depend on itself through
others.

The graph is read from the source with `ast`; nothing is imported. `from pkg import name` depends
on the module `pkg.name` when there is one, else on `pkg`; importing a submodule does not count
as importing its package's `__init__`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

Graph = Mapping[str, frozenset[str]]


def import_graph(root: Path, package: str) -> dict[str, frozenset[str]]:
    """Each module of `package` (found under `root`, the directory it is imported from) -> the
    modules of `package` it imports."""
    files: dict[str, Path] = {}
    for path in sorted(root.joinpath(*package.split(".")).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    graph: dict[str, frozenset[str]] = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in files)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    if f"{base}.{alias.name}" in files:
                        deps.add(f"{base}.{alias.name}")
                    elif base in files:
                        deps.add(base)
        deps.discard(name)
        graph[name] = frozenset(deps)
    return graph


def import_cycles(graph: Graph) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for dep in sorted(graph[module]):
            if dep not in index:
                visit(dep)
                low[module] = min(low[module], low[dep])
            elif dep in on_stack:
                low[module] = min(low[module], index[dep])
        if low[module] == index[module]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def cycle_path(graph: Graph, cycle: frozenset[str]) -> str:
    """One way round a cycle, for the failure message: "a -> b -> a"."""
    start = min(cycle)
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for dep in sorted(graph[path[-1]] & cycle):
            if dep == start:
                return " -> ".join([*path, start])
            if dep not in path:
                paths.append([*path, dep])
    return " <-> ".join(sorted(cycle))


def _write(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_lazy_type_checking_and_relative_imports_all_count(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def f():\n    from pkg import b\n",
            "pkg/b.py": "from pkg.a import f\n",
            "pkg/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from . import d\n",
            "pkg/d.py": "import pkg.c\n",
            "pkg/e.py": "from pkg.a import f\nimport os\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.e"] == {"pkg.a"}
    assert sorted(map(sorted, import_cycles(graph))) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d"]]
    assert cycle_path(graph, frozenset({"pkg.a", "pkg.b"})) == "pkg.a -> pkg.b -> pkg.a"


def test_a_submodule_import_does_not_count_as_its_package_init(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub.leaf import x\n",
            "pkg/sub/__init__.py": "from pkg.sub.leaf import x\n",
            "pkg/sub/leaf.py": "x = 1\n",
            "pkg/user.py": "from pkg.sub.leaf import x\n",
        },
    )
    assert import_cycles(import_graph(tmp_path, "pkg")) == []


def test_the_emulator_has_no_import_cycle() -> None:
    graph = import_graph(ROOT, "tray_app.demo")
    assert [cycle_path(graph, c) for c in import_cycles(graph)] == []


def test_tray_app_has_no_import_cycle() -> None:
    graph = import_graph(ROOT, "tray_app")
    assert [cycle_path(graph, c) for c in import_cycles(graph)] == []
