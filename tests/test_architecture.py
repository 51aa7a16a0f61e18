"""The shape of the source (issue 12): no import cycle between modules, a sans-I/O core that imports
nothing of the project but itself, ``constants`` and ``errors`` (and of other packages only the
standard library and ujson), and no module over 400 lines."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests import ROOT

PACKAGES = ("portfolio_ws", "simulator")
MAX_LINES = 400
CORE_MAY_IMPORT = {"portfolio_ws.core", "portfolio_ws.constants", "portfolio_ws.errors"}
CORE_THIRD_PARTY = {"ujson"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports at load time (not under ``if TYPE_CHECKING``), resolved to
    modules of the project where it names one, else the top-level name."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                out.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    out.add(full if full in known else base)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit([child])
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue

    visit(tree.body)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: {m for m in imports(name, path, known) if m in known and m != name}
            for name, path in found.items()}


def test_no_module_imports_itself_back_through_others():
    edges = graph()
    # Package __init__ modules import their children only as a package's own re-export; an edge
    # from a child to its package is loading the package first, not a cycle of logic. Both count.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_core_imports_only_itself_constants_errors_the_stdlib_and_ujson():
    found = modules()
    known = set(found)
    stdlib = set(sys.stdlib_module_names)
    wrong = []
    for name, path in found.items():
        if not name.startswith("portfolio_ws.core"):
            continue
        for imported in imports(name, path, known):
            top = imported.split(".")[0]
            if top == "portfolio_ws":
                if not any(imported == ok or imported.startswith(ok + ".") for ok in CORE_MAY_IMPORT):
                    wrong.append(f"{name} imports {imported}")
            elif top not in stdlib and top not in CORE_THIRD_PARTY and top != "__future__":
                wrong.append(f"{name} imports {imported}")
    assert not wrong, wrong


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def test_every_path_in_the_architecture_table_exists():
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) >= 20
    missing = []
    for row in rows:
        cells = row.strip("|").split("|")
        paths = [part for cell in cells[1:] for part in cell.split("`")[1::2]]
        assert len(paths) == 2, row  # one module, one test
        missing += [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, missing


# The composition root chooses the feed, so it alone may name the simulator (inside a function, when
# ``feed.source`` asks for it); nothing else of the server depends on the simulator package.
SIMULATOR_CHOOSERS = {"portfolio_ws.server.runner"}


def test_the_server_does_not_depend_on_the_simulator():
    found = modules()
    known = set(found)
    wrong = []
    for name, path in found.items():
        if not name.startswith("portfolio_ws."):
            continue
        if any(m.split(".")[0] == "simulator" for m in imports(name, path, known)):
            wrong.append(f"{name} imports simulator when it loads")
        if name.startswith("portfolio_ws.server.") and name not in SIMULATOR_CHOOSERS:
            for node in ast.walk(ast.parse(path.read_text())):
                named = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                if any(n.split(".")[0] == "simulator" for n in named):
                    wrong.append(f"{name} imports simulator (line {node.lineno})")
    assert not wrong, wrong
