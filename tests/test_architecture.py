"""Measures of the house anyone can check from the code (issue #23)."""

import ast
from pathlib import Path

import skhash

PACKAGE = Path(skhash.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, name):
    """The skhash modules a module imports, wherever the import statement is
    (functions included: a lazy import is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("skhash"))
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module or ""
            target = (
                module if node.level == 0 else ".".join(p for p in (base, module) if p)
            )
            if not target.startswith("skhash"):
                continue
            found.add(target)
            # "from . import x" and "from .pkg import mod" name modules too.
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def test_no_import_circle():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _imports(path, name) if m in paths and m != name}
        for name, path in paths.items()
    }
    # A package imports its own modules to export them: edges from a package
    # to its members are the package's own, not a circle through it.
    for name in graph:
        if paths[name].name == "__init__.py":
            graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            raise AssertionError(
                "import circle: " + " -> ".join(on_path[on_path.index(name) :] + [name])
            )
        if name in done:
            return
        on_path.append(name)
        for imported in sorted(graph[name]):
            visit(imported)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_no_room_of_the_dask_search_is_above_350_lines():
    for path in sorted((PACKAGE / "dask").glob("*.py")):
        assert len(path.read_text().splitlines()) <= 350, path.name
