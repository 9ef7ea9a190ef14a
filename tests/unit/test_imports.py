"""The library's import graph: every module imports on its own, and no import cycle or upward
import (a module importing a package above it) is made at import time."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# flashdrop/compat is a link to the top-level compat/: its modules are flashdrop.compat's.
SOURCES = {"flashdrop": ROOT / "flashdrop", "flashdrop.compat": ROOT / "compat"}


def library_modules() -> dict[str, Path]:
    """Every module of the library, by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "flashdrop" and parts[0] == "compat":
                continue  # the link: listed under flashdrop.compat from compat/
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1:] == ("__main__",):
                continue  # runs the package: `python -m flashdrop.parity`, not an import
            modules[".".join((package, *parts))] = path
    return modules


MODULES = library_modules()


def module_level_imports(name: str, path: Path) -> set[str]:
    """The library modules ``name`` imports when it is imported: its module-level imports,
    outside ``if TYPE_CHECKING:`` (imports inside functions run later). ``from a import b``
    names the module ``a.b`` when there is one, else ``a``."""
    tree = ast.parse(path.read_text())
    found = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {module for module in found if module in MODULES}


def test_the_walk_finds_the_library():
    assert {"flashdrop", "flashdrop._random", "flashdrop._checks", "flashdrop.compat"} <= set(
        MODULES
    )
    assert "flashdrop._random" in module_level_imports(
        "flashdrop._draws", MODULES["flashdrop._draws"]
    )


def test_each_module_imports_alone_in_a_fresh_interpreter():
    """``python -c "import flashdrop._random"`` and so on, for every module: an import cycle
    that works only from one entry point fails from another."""
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-c", f"import {name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in MODULES
    }
    failed = {name: run.communicate()[0][-2000:] for name, run in runs.items()}
    failed = {name: out for name, out in failed.items() if runs[name].returncode}
    assert not failed


# Private modules that serve the public add-ons (testing, parity) rather than the core: they
# compare torch tensors, so they are built on flashdrop.compat.
ADD_ON_HELPERS = {"flashdrop._builds", "flashdrop._comparison"}


def is_core(module: str) -> bool:
    """Whether ``module`` is of the library's private core (``flashdrop._random.draw``, ...):
    a private module of flashdrop itself, not the private room of a public package
    (``flashdrop.testing._outputs``) nor a helper of the add-ons."""
    parts = module.split(".")
    return len(parts) > 1 and parts[1].startswith("_") and module not in ADD_ON_HELPERS


def test_no_import_cycle_and_nothing_imports_a_module_above_it():
    """Above a module: the packages holding it (their faces re-export it; the top-level face
    excepted, which the public add-ons ``testing`` and ``parity`` use and which does not import
    them), and, for the private core, every public module (the core is what they are built on)."""
    graph = {name: module_level_imports(name, path) for name, path in MODULES.items()}
    upward = [
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if (name.startswith(target + ".") and target != "flashdrop")
        or (is_core(name) and not is_core(target))
    ]
    assert not upward, "modules import a module above them"
    # Depth-first search for a back edge: a cycle.
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path, module, target]
            if target not in state:
                cycle = visit(target, [*path, module])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle)


def test_no_library_file_is_over_500_lines():
    """One idea a file: a module past 500 lines holds more than one (split it)."""
    long = {
        name: length
        for name, path in MODULES.items()
        if (length := len(path.read_text().splitlines())) > 500
    }
    assert not long
