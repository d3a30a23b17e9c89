"""The layout shows the architecture: the import graph of controller/ and
policies/ (every import, those under TYPE_CHECKING and inside functions too)
has no circle, controller/ keeps at most ten modules at its top, and no product
module imports the test helpers of controller.testing."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("controller", "policies")
FLAT_LIMIT = 10


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ours that `name` imports, wherever the import stands."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import module` imports the module, not the package's
            # __init__ (Python runs that first, but it is the package's own).
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            # A package's __init__ importing its own submodules is not a circle
            # of ours unless the submodule imports the package back by name.
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_circle():
    edges = graph()
    assert "controller.call.callflow" in edges  # the graph is ours, not empty
    cycle = find_cycle(edges)
    assert cycle is None, " -> ".join(cycle)


def test_controller_keeps_few_modules_at_its_top():
    flat = sorted(p.name for p in (ROOT / "controller").glob("*.py"))
    assert len(flat) <= FLAT_LIMIT, flat


def test_no_product_module_imports_the_test_helpers():
    offenders = {
        name: sorted(t for t in targets if t == "controller.testing" or t.startswith("controller.testing."))
        for name, targets in graph().items()
        if not (name == "controller.testing" or name.startswith("controller.testing."))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
