"""The layout's rules, read from the source: the library never imports the app, imports run one way between
layers without cycles, and files and functions stay a readable size."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from seg.paths import REPO_ROOT

# Lower number = lower layer; a module may import its own layer or lower ones only.
LAYERS = {"seg": 0, "seg.synth": 1, "seg.data": 2, "seg.infer": 3, "seg.evaluate": 4, "seg.train": 5,
          "seg.bench": 6, "webapp": 7}
ENTRY_MODULES = {"seg.predict", "seg.export", "seg.prepare", "seg.datastats", "seg.video"}  # python -m shims
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def _modules() -> dict[str, Path]:
    out = {}
    for root in ("seg", "webapp"):
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - child.level + 1] + ([base] if base else []))
                for a in child.names:  # `from pkg import mod` imports pkg.mod when that is a module
                    found.append((f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(".".join(parts[:2]), LAYERS.get(parts[0], 0))


def test_the_library_never_imports_the_app_streamlit_or_plotly():
    bad = [f"{m}: {name} (line {line})" for m, p in MODULES.items() if m.startswith("seg")
           for name, line, _ in _imports(p, m) if name.split(".")[0] in ("streamlit", "plotly", "webapp")]
    assert not bad, bad


def test_imports_run_from_higher_layers_to_lower_ones_only():
    bad = []
    for m, p in MODULES.items():
        if m in ENTRY_MODULES:
            continue
        for name, line, _ in _imports(p, m):
            if name in MODULES and name not in ENTRY_MODULES and _layer(name) > _layer(m):
                bad.append(f"{m} -> {name} (line {line})")
    assert not bad, bad


def test_no_import_cycle_between_modules():
    graph = {m: {n for n, _, _ in _imports(p, m) if n in MODULES and n != m} for m, p in MODULES.items()}
    # A package's __init__ re-exporting its modules is not a cycle with them.
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in graph.items()}
    state, cycles = {}, []

    def walk(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                walk(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert not cycles, cycles


def test_the_library_imports_no_private_name_of_another_module():
    bad = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("seg", "webapp"):
                bad += [f"{m}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad, bad


@pytest.mark.parametrize("root", ["seg", "webapp", "pages"])
def test_files_and_functions_stay_a_readable_size(root):
    long_files, long_functions = [], []
    for path in sorted((REPO_ROOT / root).rglob("*.py")):
        text = path.read_text()
        rel = path.relative_to(REPO_ROOT)
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{rel} ({len(text.splitlines())})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                n = node.end_lineno - start + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel}:{node.lineno} {node.name} ({n})")
    assert not long_files and not long_functions, long_files + long_functions


def test_at_most_sixteen_modules_directly_in_seg():
    top = sorted(p.name for p in (REPO_ROOT / "seg").glob("*.py"))
    assert len(top) <= 16, top
