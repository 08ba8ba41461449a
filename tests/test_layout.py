"""The house keeps its layers: no import circle among the modules of ``benchmarks/`` and ``tools/``.

Every import counts, at the top of a module or inside a function (an import inside a function
is how a circle hides), absolute or relative.  A module imports a package's ``__init__`` too.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmarks", "tools")


def module_name(path, root=ROOT):
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree, name, is_package, known):
    """The project's modules that the module ``name`` imports (as they exist in ``known``)."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``a.b.c`` names a module or a name in one
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root=ROOT, packages=PACKAGES):
    files = {module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")
             if "vendor" not in p.parts}
    return {name: imported(ast.parse(path.read_text()), name, path.name == "__init__.py", files)
            for name, path in files.items()}


def circles(graph):
    """Every strongly connected set of more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_import_circle_in_the_suite_or_the_tools():
    graph = import_graph()
    assert "benchmarks.lib.checks" in graph and "tools.reporting.cli" in graph
    assert "benchmarks.lib.itemgen" in graph["benchmarks.lib.checks"]
    assert circles(graph) == []


def test_the_walk_sees_a_circle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "benchmarks"
    (pkg / "lib").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "lib" / "__init__.py").write_text("")
    (pkg / "lib" / "a.py").write_text("from . import b\n")
    (pkg / "lib" / "b.py").write_text("def late():\n    from .a import thing\n")
    (pkg / "lib" / "c.py").write_text("from benchmarks.lib.a import x\n")
    graph = import_graph(tmp_path, ("benchmarks",))
    assert graph["benchmarks.lib.c"] == {"benchmarks.lib.a"}
    assert circles(graph) == [["benchmarks.lib.a", "benchmarks.lib.b"]]
