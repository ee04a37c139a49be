"""The package's import structure, read from the source with ``ast`` (nothing is imported).

Every ``import`` counts: at module level and inside functions, absolute and relative.
``from . import x`` is an import of the submodule ``x`` when there is one, and
``from napari_unet import name`` is an import of the module that ``napari_unet.__init__``
loads ``name`` from (its lazy ``_EXPORTS``). A module's implicit import of its own parent
packages is not counted (every submodule has that one).

- no cycle: every module can be understood (and imported) after the ones it imports;
- only the GUI (``napari_unet/widgets/``, ``napari_unet/cli/gui.py``) imports Qt or napari;
- the paper's package ``napari_unet/unet/`` depends on none of the packages built on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "napari_unet"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE
GUI_LIBRARIES = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "napari")
GUI_MODULES = (f"{PACKAGE}.widgets", f"{PACKAGE}.cli.gui")
PAPER = f"{PACKAGE}.unet"
NOT_FROM_PAPER = tuple(
    f"{PACKAGE}.{p}" for p in ("cli", "widgets", "interchange", "workflow", "io")
)


def module_name(path: Path, root: Path = ROOT, package: str = PACKAGE) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(module: str, files: dict[str, Path]) -> bool:
    return files[module].name == "__init__.py"


def lazy_exports(files: dict[str, Path], package: str = PACKAGE) -> dict[str, str]:
    """``name -> module`` of the package's lazy re-exports (``_EXPORTS`` in __init__)."""
    tree = ast.parse(files[package].read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
            exports = ast.literal_eval(node.value)
            return {name: f"{package}.{module}" for name, module in exports.items()}
    return {}


def imports_of(
    module: str, files: dict[str, Path], exports: dict[str, str], package: str = PACKAGE
) -> tuple[set[str], set[str]]:
    """(modules of the package, top-level names of other libraries) ``module`` imports."""
    tree = ast.parse(files[module].read_text(encoding="utf-8"), str(files[module]))
    here = module if is_package(module, files) else module.rpartition(".")[0]
    inside: set[str] = set()
    outside: set[str] = set()

    def known(name: str) -> str:
        """The innermost module of the package that ``name`` (a dotted path) refers to."""
        while name not in files:
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    inside.add(known(alias.name))
                else:
                    outside.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not (source == package or source.startswith(package + ".")):
                outside.add(source.split(".")[0])
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in files:  # from . import data: the submodule
                    inside.add(sub)
                elif source == package and alias.name in exports:  # lazy re-export
                    inside.add(exports[alias.name])
                else:
                    inside.add(known(source))
    inside.discard(module)
    return inside, outside


def import_graph(
    root: Path = ROOT, package: str = PACKAGE
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> package modules it imports, module -> other libraries it imports)."""
    files = {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}
    exports = lazy_exports(files, package)
    graph, libraries = {}, {}
    for module in files:
        graph[module], libraries[module] = imports_of(module, files, exports, package)
    return graph, libraries


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of two or more modules that all reach each other (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (a -> b -> ... -> a) through each module that is on a cycle."""
    cycles: list[list[str]] = []
    for group in strongly_connected(graph):
        for start in sorted(group):
            if not any(start in c for c in cycles):
                cycles.append(_cycle_in(start, group, graph))
    return cycles


def _cycle_in(start: str, group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from ``start`` back to it within its group (breadth-first)."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("not a cycle")  # pragma: no cover


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _show(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(c) for c in cycles)


GRAPH, LIBRARIES = import_graph()


def test_the_graph_sees_the_package():
    assert f"{PACKAGE}.unet.data" in GRAPH and f"{PACKAGE}.unet.tiling" in GRAPH
    # relative, module-level: tiling imports data
    assert f"{PACKAGE}.unet.data" in GRAPH[f"{PACKAGE}.unet.tiling"]
    # inside a function: data.prepare_sample imports weight_maps
    assert f"{PACKAGE}.unet.weight_maps" in GRAPH[f"{PACKAGE}.unet.data"]
    assert "torch" in LIBRARIES[f"{PACKAGE}.unet.tiling"]


def test_no_import_cycle():
    cycles = find_cycles(GRAPH)
    assert not cycles, f"import cycles:\n{_show(cycles)}"


def test_only_the_gui_imports_qt_or_napari():
    found = {
        module: sorted(set(libs) & set(GUI_LIBRARIES))
        for module, libs in LIBRARIES.items()
        if not _within(module, GUI_MODULES)
    }
    found = {m: libs for m, libs in found.items() if libs}
    assert not found, f"GUI libraries imported outside the GUI: {found}"


def test_the_paper_package_depends_on_nothing_built_on_it():
    found = {
        module: sorted(m for m in deps if _within(m, NOT_FROM_PAPER))
        for module, deps in GRAPH.items()
        if _within(module, (PAPER,))
    }
    found = {m: deps for m, deps in found.items() if deps}
    assert not found, f"{PAPER} imports from the packages built on it: {found}"


def test_a_cycle_is_found_and_shown(tmp_path):
    """The checker itself: two modules that import each other, one of them in a function."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("_EXPORTS = {'f': 'sub.b'}\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from pkg import f\nfrom . import c\n")
    graph, _ = import_graph(pkg, "pkg")
    assert graph["pkg.d"] == {"pkg.sub.b", "pkg.c"}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]


def test_the_workflow_depends_on_no_front_end():
    """The one pipeline is under the CLI and the widget, never on top of them."""
    front_ends = (f"{PACKAGE}.cli", f"{PACKAGE}.widgets")
    found = {
        module: sorted(m for m in deps if _within(m, front_ends))
        for module, deps in GRAPH.items()
        if _within(module, (f"{PACKAGE}.workflow",))
    }
    found = {m: deps for m, deps in found.items() if deps}
    assert not found, f"the workflow imports a front-end: {found}"
