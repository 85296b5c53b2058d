"""No circle of imports among the engine's run-folder modules: runs -> metrics -> training -> movie -> runs
was one (through imports inside functions); storage, history and the datasets import none of the
modules that import them.  Imports inside functions count: a lazy import still ties two modules."""

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for file in ENGINE.rglob("*.py"):
        parts = file.relative_to(ENGINE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    graph = {}
    for name, file in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(file.read_text())):
            found = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for target in found:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_engine_module_that_runs_or_storage_reach_imports_them_back():
    graph = import_graph()
    for name in ("engine.runs", "engine.storage", "engine.history", "engine.datasets", "engine.config",
                 "engine.metrics", "engine.training", "engine.movie"):
        assert name not in reachable(graph, name), f"{name} imports itself through a circle"


def test_the_moved_modules_are_gone():
    assert not (ENGINE / "data.py").exists()
    assert {"read_json", "History", "ProbeCodes", "atomic_write"}.isdisjoint(
        n.name for n in ast.parse((ENGINE / "runs.py").read_text()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
