"""The house rules of the code, checked on its source: imports point one way (no cycle,
function-local imports included), no module grows past about 350 lines, and no command
module reaches into the search orchestrator."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "search_spaces")
MAX_LINES = 350
# Commands other than `nas search`: they read a study folder and must not import the search.
COMMANDS = ("nas.train", "nas.baseline", "nas.export", "nas.compare", "nas.count", "nas.pareto",
            "nas.storage", "nas.study_folder", "nas.trials", "nas.weights", "nas.records",
            "nas.recipe", *(f"nas.commands.{name}" for name in ("pareto", "export", "train",
            "baseline", "compare", "count", "dashboard")))
ORCHESTRATOR = "nas.search.run"


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known) -> set[str]:
    """Project modules that ``name`` imports anywhere in its file (also inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # `from nas import store` imports the module nas.store; `from nas.x import f` nas.x
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above must be able to fail: a planted two-module cycle is found."""
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / "pkg").mkdir(exist_ok=True)
        (tmp_path / "pkg" / f"{name}.py").write_text(f"def f():\n    from pkg import {other}\n")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGES", ("pkg",))
    try:
        test_no_import_cycle()
    except AssertionError as exc:
        assert "pkg.a -> pkg.b -> pkg.a" in str(exc)
    else:
        raise AssertionError("a planted import cycle was not found")


def test_no_module_is_too_long():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_commands_do_not_import_the_search_orchestrator():
    edges = graph()

    def reaches(start, seen=None):
        seen = set() if seen is None else seen
        for nxt in edges[start] - seen:
            seen.add(nxt)
            reaches(nxt, seen)
        return seen

    for command in COMMANDS:
        assert ORCHESTRATOR not in reaches(command), f"{command} imports {ORCHESTRATOR}"


def test_the_search_is_imported_by_the_search_command_alone():
    importers = {name for name, targets in graph().items()
                 if any(t == "nas.search" or t.startswith("nas.search.") for t in targets)}
    assert {n for n in importers if not n.startswith("nas.search")} == {"nas.commands.search"}


def test_the_spec_layer_needs_no_torch_and_the_loop_no_optuna():
    """arch and budget never import torch; the training loop never imports optuna."""
    code = ("import sys, nas.arch, nas.budget; assert 'torch' not in sys.modules;"
            "import nas.trainer; assert 'optuna' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
