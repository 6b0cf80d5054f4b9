"""The project's own import graph: layers point one way and no module imports itself back.

Layers, left to right: `eat` (shared ground: errors, io, config, console, prompts, languages, the CLI root)
-> `wiki_data` -> `training` -> `evaluation` -> `demo`. A module may import its own package and packages to
its left, never to its right (the CLI root's lazy command table names modules as strings, not imports).
Imports inside functions count: they hide an edge, they do not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAYERS = ["eat", "wiki_data", "training", "evaluation", "demo"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_imports() -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in the file)."""
    modules = {module_name(p): p for layer in LAYERS for p in (REPO / layer).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                # the longest project module the import names (a name imported from a module is not a module)
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def test_layers_point_one_way():
    graph = project_imports()
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = sorted(
        f"{src} -> {dst}"
        for src, dsts in graph.items()
        for dst in dsts
        if rank[dst.split(".")[0]] > rank[src.split(".")[0]]
    )
    assert not upward, "imports from a lower layer up:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = project_imports()
    # Tarjan's strongly connected components; a component of more than one module is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_graph_sees_function_level_imports():
    graph = project_imports()
    assert (
        "wiki_data.mentions" in graph["wiki_data.mine"] or "wiki_data.mentions" in graph["wiki_data.shards"]
    )
    assert "eat.errors" in graph["eat.io"]
