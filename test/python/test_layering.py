"""The layering the design draws (README, Layout), read from the import graph of attnc's sources (no module
is imported).

Bottom to top: dialect ← passes | conversion | autodiff ← pipeline ← runtime ← frontend ← tools.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "attnc"

# Each layer and what it may import from attnc (itself included). Top-level modules are layers of their own.
ALLOWED: dict[str, set[str]] = {
    "dialect": {"dialect"},
    "autodiff": {"dialect", "autodiff"},
    "conversion": {"dialect", "autodiff", "conversion"},
    "passes": {"dialect", "autodiff", "conversion", "passes"},
    "lowering": {"dialect", "lowering"},
    "pipeline": {"dialect", "passes", "pipeline"},
    "runtime": {"dialect", "pipeline", "lowering", "runtime", "package"},  # package: __version__ alone
    "frontend": {"dialect", "runtime", "frontend"},
    "reference": {"frontend", "runtime", "reference"},
    "ops": {"frontend", "ops"},  # flash-linear-attention's calls over linear_attention
    "tools": {"dialect", "passes", "pipeline", "lowering", "runtime", "frontend", "tools", "package"},
    "package": {"package"},  # attnc/__init__.py: its exports load lazily, by name
}


def _lazy_exports() -> dict[str, str]:
    """attnc/__init__.py's `_EXPORTS`: the public names it loads on first use, and their modules."""
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return value
    return {}


_LAZY_EXPORTS = _lazy_exports()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return "package" if len(parts) == 1 else parts[1]


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """The statements under `if TYPE_CHECKING:`, which Python never runs."""
    return {
        stmt
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for stmt in node.body
    }


def _imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every attnc import `path` runs, lazy ones included."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "attnc":
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            if base != "attnc":
                if base.split(".")[0] == "attnc":
                    yield base, [a.name for a in node.names], node.lineno
                continue
            for alias in node.names:  # `from attnc import frontend`, `from attnc import attention` (lazy)
                if (ROOT / alias.name).is_dir() or (ROOT / f"{alias.name}.py").is_file():
                    yield f"attnc.{alias.name}", [], node.lineno
                else:
                    yield _LAZY_EXPORTS.get(alias.name, "attnc"), [alias.name], node.lineno


def _sources() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p) for p in _sources()}
    graph: dict[str, set[str]] = {}
    for path in _sources():
        edges = graph.setdefault(_module_name(path), set())
        for module, names, _ in _imports(path):
            for name in names:  # `from attnc.conversion import chunk_kernels` imports a module
                if f"{module}.{name}" in modules:
                    edges.add(f"{module}.{name}")
            if module in modules and not (names and all(f"{module}.{n}" in modules for n in names)):
                edges.add(module)
    return graph


def test_layering_imports_only_go_down():
    """Every attnc import stays within its layer or goes to a layer below it."""
    wrong = []
    for path in _sources():
        layer = _layer(_module_name(path))
        for module, _, line in _imports(path):
            if _layer(module) not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} ({layer}) imports {module}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("rule", ["runtime never imports frontend", "frontend never imports passes"])
def test_layering_named_rules(rule):
    """The two rules the design names, stated on their own so a failure reads plainly."""
    below, _, above = rule.partition(" never imports ")
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line} imports {module}"
        for path in _sources()
        if _layer(_module_name(path)) == below
        for module, _, line in _imports(path)
        if _layer(module) == above
    ]
    assert not offenders, "\n".join(offenders)


def test_layering_no_private_names_cross_modules():
    """No module imports another module's private (underscored) name."""
    wrong = [
        f"{path.relative_to(ROOT.parent)}:{line} imports {name} from {module}"
        for path in _sources()
        for module, names, line in _imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__") and module != _module_name(path)
    ]
    assert not wrong, "\n".join(wrong)


def test_layering_has_no_import_cycles():
    """The module import graph is acyclic, lazy (function-level) imports included."""
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_layering_passes_hold_only_passes():
    """attnc/passes/ holds one ModulePass per file, named after its flag, and the registry."""
    for path in sorted((ROOT / "passes").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        passes = [
            node
            for node in tree.body
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "ModulePass" for b in node.bases)
        ]
        assert len(passes) == 1, f"{path.name} defines {len(passes)} ModulePass classes"
        flags = [
            stmt.value.value
            for stmt in passes[0].body
            if isinstance(stmt, ast.Assign)
            and any(getattr(t, "id", "") == "name" for t in stmt.targets)
            and isinstance(stmt.value, ast.Constant)
        ]
        assert flags and flags[0].replace("-", "_") == path.stem, f"{path.name} holds pass {flags}"


def test_layering_no_file_over_800_lines():
    """A file past 800 lines is split by concept (house style)."""
    long = [f"{p.relative_to(ROOT.parent)}: {n}" for p in _sources() if (n := len(p.read_text().splitlines())) > 800]
    assert not long, "\n".join(long)
