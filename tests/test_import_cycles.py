"""No import cycle inside ``dgp_engine``, not even a lazy one.

import-linter's layers contract checks imports between the rooms (sub-packages); this test
checks every module against every other. An import inside a function, or under
``if TYPE_CHECKING:``, counts as much as one at the top of a file: a cycle hidden in a
function still means neither module can be understood (or moved) without the other.

Each module is parsed with ``ast`` (nothing is imported), relative imports are resolved
against the module's package, and ``from P import name`` points at the submodule ``P.name``
when there is one, else at ``P`` itself.  Importing ``a.b.c`` also runs ``a/__init__`` and
``a/b/__init__``; those parent edges are left out (every package would otherwise be in a
cycle with the submodules it names).
"""

from __future__ import annotations

import ast
from collections import deque
from itertools import pairwise
from pathlib import Path

from .conftest import REPO


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (a folder under ``root``), by dotted name."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module → {imported module of the same package: line of the first such import}."""
    modules = module_names(root, package)

    def known(name: str) -> str | None:
        """The module ``name`` names, or the closest module above it (``x.attr`` → x)."""
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [known(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else known(source))
            for target in targets:
                if target and target != name and target.split(".")[0] == package:
                    edges.setdefault(target, node.lineno)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle (first module repeated at the end) per strongly connected
    component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)

    cycles = []
    for component in components:
        members = set(component)
        start = component[0]
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:  # breadth first: the shortest way from start back to start
            v = queue.popleft()
            for w in sorted(graph[v]):
                if w not in members or w in came_from:
                    continue
                came_from[w] = v
                if w == start:
                    queue.clear()
                    break
                queue.append(w)
        path = [start]
        while path[-1] != start or len(path) == 1:
            path.append(came_from[path[-1]])
        cycles.append(path[::-1])
    return cycles


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} (line {graph[a][b]}) → {b}" for a, b in pairwise(cycle)]
    return "; ".join(steps)


def test_the_engine_has_no_import_cycle():
    graph = import_graph(REPO, "dgp_engine")
    assert len(graph) > 50  # the walk found the engine
    cycles = [describe(c, graph) for c in find_cycles(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_lazy_relative_cycle_is_found(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .low import base\n",
            "pkg/low.py": "def base():\n    from .room.high import top  # lazy, and back up\n",
            "pkg/room/__init__.py": "",
            "pkg/room/high.py": "from ..low import base\n\ndef top():\n    return base\n",
            "pkg/room/side.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from . import high\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.room.side"] == {"pkg.room.high": 3}
    assert find_cycles(graph) == [["pkg.low", "pkg.room.high", "pkg.low"]]
    assert describe(find_cycles(graph)[0], graph) == (
        "pkg.low (line 2) → pkg.room.high; pkg.room.high (line 1) → pkg.low"
    )


def test_a_package_importing_its_submodules_is_no_cycle(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .a import f\nfrom . import b\n",
            "pkg/a.py": "from . import b\n\ndef f():\n    return b\n",
            "pkg/b.py": "import pkg.c as c\n",
            "pkg/c.py": "X = 1\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg"] == {"pkg.a": 1, "pkg.b": 2}
    assert graph["pkg.b"] == {"pkg.c": 1}
    assert find_cycles(graph) == []
