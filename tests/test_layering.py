"""The layout rules of ARCHITECTURE.md, read from the source: every import of every module
(function-level ones included, since they are imports all the same) is checked against
the layers, and the module graph must have no cycle.

Layers, bottom up:
  formats/                       standard library and orjson only
  cgroupstats/                   + formats
  runtime/ collector/ shipper/ grafana/   + the bottom layer, never each other
  boxwatch/                      anything
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# package -> the first-party packages it may import (besides itself)
BOTTOM = ("formats", "cgroupstats")
ALLOWED: dict[str, frozenset[str]] = {
    "formats": frozenset(),
    "cgroupstats": frozenset({"formats"}),
    "runtime": frozenset(BOTTOM),
    "collector": frozenset(BOTTOM),
    "shipper": frozenset(BOTTOM),
    "grafana": frozenset(BOTTOM),
    "boxwatch": frozenset({*BOTTOM, "runtime", "collector", "shipper", "grafana"}),
}
THIRD_PARTY_BELOW = frozenset({"orjson"})  # all the bottom layer may use beyond stdlib


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in ALLOWED:
        for path in sorted((REPO / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the module. ``from
    pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.append((sub if sub in MODULES else module, node.lineno))
    return out


def _owner(module: str) -> str:
    """The first-party module an import lands in (``a.b.C`` -> ``a.b``), or ""."""
    while module and module not in MODULES:
        module = module.rpartition(".")[0]
    return module


def test_every_package_is_found() -> None:
    for package in ALLOWED:
        assert package in MODULES, f"{package}/ has no __init__.py"


def test_no_sideways_or_upward_import() -> None:
    bad = []
    for name, path in MODULES.items():
        top = name.partition(".")[0]
        for imported, line in _imports(name, path):
            first = imported.partition(".")[0]
            if first == top:
                continue
            if first in ALLOWED:
                if first not in ALLOWED[top]:
                    bad.append(f"{path.relative_to(REPO)}:{line}: {top} imports {imported}")
            elif top in BOTTOM and first not in sys.stdlib_module_names \
                    and first not in THIRD_PARTY_BELOW and first != "__future__":
                bad.append(f"{path.relative_to(REPO)}:{line}: bottom layer imports {imported}")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


# Data flows one way inside a program: what produces records never imports a sink.
SOURCES = ("shipper.sources", "shipper.parse", "shipper.records", "shipper.enrich",
           "collector.discover", "collector.events", "collector.records", "collector.history")
SINKS = ("shipper.sinks", "collector.sinks")


def test_sources_never_import_sinks() -> None:
    bad = []
    for name, path in MODULES.items():
        if not any(name == s or name.startswith(s + ".") for s in SOURCES):
            continue
        for imported, line in _imports(name, path):
            if any(imported == s or imported.startswith(s + ".") for s in SINKS):
                bad.append(f"{path.relative_to(REPO)}:{line}: {name} imports {imported}")
    assert not bad, "a source imports a sink:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for imported, _ in _imports(name, path):
            target = _owner(imported)
            if target and target != name:
                graph[name].add(target)
    return graph


def test_no_import_cycle() -> None:
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a made-up graph with one cycle is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# the bottom-layer modules `box run` and its monitor import
RUN_PATH = ("formats", "formats.jsonfile.writer", "formats.statefile", "formats.units")


@pytest.mark.parametrize("package", RUN_PATH)
def test_run_path_imports_cheaply(package: str) -> None:
    """These are on `box run`'s path: importing them must not pull in what its start
    budget cannot afford (see BENCHMARKS.md)."""
    import subprocess

    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); before = set(sys.modules); "
            f"import {package}; new = set(sys.modules) - before; "
            "print(' '.join(m for m in ('dataclasses', 'typing', 'pathlib', 'argparse', "
            "'asyncio', 'aiohttp') if m in new))")
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import {package} pulls in {out}"
