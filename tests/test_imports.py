"""No import cycles in ``src/`` or ``bench/``: the layering draws arrows one way, and a module that needs a
name from a module importing it is a sign the name lives in the wrong place.

Every import counts, wherever it stands: under ``if TYPE_CHECKING:`` or inside a function (a deferred import
hides a cycle from the interpreter, not from the reader). An import names the most specific module it
reaches (``from a.b import c`` is ``a.b.c`` when that is a module, else ``a.b``); a package's
``__init__`` run on the way there is not an edge, as it is not one for the reader either.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules_of(root: Path, package_root: Path) -> dict[str, Path]:
    """Every ``.py`` file under ``root``, by its dotted name relative to ``package_root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(package_root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                targets.add(submodule if submodule in modules else base)
    return {target for target in targets if target in modules and target != name}


def cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The import graph's cycles, one per strongly connected component of more than one module (Tarjan)."""
    graph = {name: sorted(imported(name, path, modules)) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in graph:
        if node not in index:
            visit(node)
    return sorted(found)


def describe(found: list[list[str]], modules: dict[str, Path]) -> str:
    lines = []
    for component in found:
        members = set(component)
        lines.append(" <-> ".join(component))
        for name in component:
            inside = sorted(imported(name, modules[name], modules) & members)
            lines.append(f"    {name} imports {', '.join(inside)}")
    return "\n".join(lines)


def test_src_has_no_import_cycle() -> None:
    modules = modules_of(ROOT / "src" / "promopool", ROOT / "src")
    found = cycles(modules)
    assert found == [], "import cycles in src/:\n" + describe(found, modules)


def test_bench_has_no_import_cycle() -> None:
    # The bench scripts run as `python bench/<script>.py` and import each other by bare name.
    modules = modules_of(ROOT / "bench", ROOT / "bench")
    found = cycles(modules)
    assert found == [], "import cycles in bench/:\n" + describe(found, modules)


def test_the_check_sees_a_cycle(tmp_path: Path) -> None:
    # Without this, a graph built wrong (say, no edges at all) would pass the two tests above.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n"
    )
    (package / "c.py").write_text("def f():\n    import pkg.b\n")
    modules = modules_of(package, tmp_path)
    assert cycles(modules) == [["pkg.a", "pkg.b"]]


def test_no_test_module_imports_another() -> None:
    # Shared test code lives in tests/helpers.py or tests/conftest.py: a test module imported by another
    # runs its module-level code twice under two names, and its tests cannot be moved without breaking both.
    modules = modules_of(ROOT / "tests", ROOT)
    found = {
        name: sorted(
            target
            for target in imported(name, path, modules)
            if target.rpartition(".")[2].startswith("test_")
        )
        for name, path in modules.items()
    }
    assert {name: targets for name, targets in found.items() if targets} == {}
