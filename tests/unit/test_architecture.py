"""House rules that keep the engine independent of its front ends."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installer_never_imports_textual_or_screens() -> None:
    offenders = []
    for path in sorted((ROOT / "installer").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {n}"
                for n in names
                if n.split(".")[0] in {"textual", "screens"}
            ]
    assert offenders == []


def test_importing_every_installer_module_loads_no_ui() -> None:
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "installer").rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'screens')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""


def _import_graph() -> dict[str, set[str]]:
    """Every module of ``installer`` and the modules of ``installer`` it imports: at module
    level, inside functions and under ``TYPE_CHECKING`` alike (a lazy import is still a
    dependency). ``from package import name`` counts as importing the submodule ``name``
    when there is one, else the package."""
    modules: dict[str, Path] = {}
    for path in (ROOT / "installer").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        [*package[: len(package) - node.level + 1], *[base][: bool(base)]]
                    )
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    imported.append(submodule if submodule in modules else base)
            graph[name] |= {m for m in imported if m in modules and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_import_cycle_inside_installer() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_checks_depend_downward_only() -> None:
    graph = _import_graph()
    checks = {m for m in graph if m.startswith("installer.checks")}
    # The measurements are what the probes fill in, the checks judge and detection reads.
    assert not any(
        m.startswith("installer.checks.")
        for m in graph["installer.checks.measurements"] - {"installer.checks.docker_probe"}
    )
    for module in checks:
        outside = {m for m in graph[module] if m.split(".")[1] in ("targets", "bundle", "render")}
        assert outside == set(), module


def test_the_engine_layer_imports_no_layer_above_it() -> None:
    graph = _import_graph()
    above = (
        *("checks", "live", "bundle", "backup", "export", "targets", "render"),
        *("screens", "cli", "install_cli"),
    )
    offenders = {
        (module, imported)
        for module, imports in graph.items()
        if module.startswith("installer.engine")
        for imported in imports
        if imported.split(".")[1] in above
    }
    assert offenders == set()
