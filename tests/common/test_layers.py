"""The layers of the code are folders, and imports point only downward, with no circle.

bottom: ``common`` (configuration, files, text, errors, the database engine);
domain: ``nlu``, ``retrieval``, ``learning``;
adapters: ``bot``, ``admin_api``, ``helpdesk`` (the CLI and the supervisor).
The bot reaches the admin API only over HTTP, so neither adapter imports the other.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What each package may import besides itself.
ALLOWED = {
    "common": set(),
    "nlu": {"common"},
    "retrieval": {"common"},
    "learning": {"common", "nlu", "retrieval"},
    "bot": {"common", "nlu", "retrieval"},
    "admin_api": {"common", "nlu", "retrieval", "learning"},
    "helpdesk": {"common", "nlu", "retrieval", "learning", "bot", "admin_api"},
}


def _imports() -> dict[str, set[str]]:
    """Every first-party module each module imports, at any depth (lazy imports included)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
                ".__init__")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                for name in names:
                    if name.split(".")[0] in ALLOWED:
                        graph[module].add(name)
    return graph


def test_packages_import_only_the_layers_below_them() -> None:
    wrong = sorted(f"{module} imports {name}" for module, names in _imports().items()
                   for name in names
                   if name.split(".")[0] != module.split(".")[0]
                   and name.split(".")[0] not in ALLOWED[module.split(".")[0]])
    assert wrong == []


def test_no_module_imports_itself_through_others() -> None:
    graph = _imports()
    modules = set(graph) | {n for names in graph.values() for n in names}
    edges = {m: {n for n in graph.get(m, ()) if n in modules and n != m} for m in modules}
    # a name "pkg.mod.Thing" is not a module: keep only edges to modules that exist as files
    real = {m for m in modules if (ROOT / Path(*m.split("."))).with_suffix(".py").is_file()
            or (ROOT / Path(*m.split(".")) / "__init__.py").is_file()}
    edges = {m: {n for n in targets if n in real and not m.startswith(n + ".")
                 and not n.startswith(m + ".")}
             for m, targets in edges.items() if m in real}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []
