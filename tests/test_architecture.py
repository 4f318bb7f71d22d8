"""The layering that ARCHITECTURE.md describes, checked on the source with ``ast``: no import
cycles, no private names used across modules or objects, no fitted attribute (``x.name_ = ...``)
written outside the module of the class that owns it, and no module much over 400 lines
without a stated reason. Static checks: they read the files and import nothing."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aecore", "ui")
# Private names of other projects that we use on purpose, each with its reason (ui/runtime.py).
ALLOWED_PRIVATE = {
    "script_runner._clean_problem_modules": "Streamlit calls keras.backend.clear_session() "
    "after every run; ui/runtime.py replaces that internal function (80% of server CPU).",
    "Runtime.instance()._session_mgr": "Streamlit has no public list of sessions; the idle "
    "release (ui/runtime.py) reads it, and does nothing when it is missing.",
}
# Owners whose leading-underscore attributes are not private names (library modules we call).
LIBRARY_ALIASES = {"np", "pd", "tf", "keras", "os", "sys", "st", "pa", "pacsv", "scipy",
                   "sklearn", "plotly", "threading", "warnings", "argparse", "_"}  # fmt: skip
MAX_LINES = 450
LONG_MODULES = {  # module: why it stays whole (also in ARCHITECTURE.md)
    "aecore/io/reader.py": "one CSV reader: encoding, delimiter, decimal commas and type "
    "settling share their helpers",
    "aecore/io/inference.py": "the column-role rules and the notes that explain each choice",
    "aecore/detector.py": "one class owns fit, fine-tuning, scoring and its state",
    "aecore/classifier.py": "one class owns the few-label classifier's fit, head and state",
    "aecore/store.py": "bundle files: schema, atomic writes, versions, locks and listing",
    "aecore/evaluation/drift.py": "the statistics behind one drift verdict",
    "aecore/evaluation/thresholds.py": "every threshold method and the sweep they share",
    "aecore/viz/charts.py": "every Plotly figure of the dashboard, one function each",
    "aecore/datasets.py": "the generators of the sample CSVs, one per sample",
    "aecore/cli.py": "one argparse command line: a parser and a handler per command",
    "ui/session.py": "what a dashboard session has loaded, in one place",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the project that ``module`` imports, at any level (function bodies too)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package[: len(package) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for candidate in [base, *(f"{base}.{alias.name}" for alias in node.names)]:
                if candidate in known and candidate != module:
                    targets.add(candidate)
        elif isinstance(node, ast.Import):
            targets |= {a.name for a in node.names if a.name in known and a.name != module}
    return targets


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            # A package's __init__ importing its own submodules is not a cycle of layers.
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_private_names_across_modules_or_objects():
    modules = _modules()
    found = []
    for path in modules.values():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "") in modules):
                found += [f"{path.name}: from {node.module} import {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]  # fmt: skip
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
                continue
            if node.attr.startswith("__"):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
                continue
            text = ast.unparse(owner)
            if text.split(".")[0] in LIBRARY_ALIASES or f"{text}.{node.attr}" in ALLOWED_PRIVATE:
                continue
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {text}.{node.attr}")
    assert found == []


def test_fitted_attributes_are_written_only_by_their_owner():
    modules = _modules()
    trees = {name: _tree(path) for name, path in modules.items()}
    owned = defaultdict(set)  # attribute -> modules whose classes set it on self
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"
                    and node.attr.endswith("_") and not node.attr.endswith("__")):  # fmt: skip
                owned[node.attr].add(name)
    outside = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if (isinstance(part, ast.Attribute) and part.attr.endswith("_")
                            and not part.attr.endswith("__")
                            and not (isinstance(part.value, ast.Name)
                                     and part.value.id in ("self", "cls"))
                            and name not in owned[part.attr]):  # fmt: skip
                        outside.append(f"{modules[name].relative_to(ROOT)}:{part.lineno} "
                                       f"{ast.unparse(part)}")  # fmt: skip
    assert outside == []


def test_the_modelling_package_never_imports_streamlit():
    for name, path in _modules().items():
        if not name.startswith("aecore"):
            continue
        for node in ast.walk(_tree(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_no_module_is_much_over_400_lines_without_a_stated_reason():
    long = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _modules().values()
    }
    over = {path: n for path, n in long.items() if n > MAX_LINES and path not in LONG_MODULES}
    assert over == {}
    assert set(LONG_MODULES) <= set(long), "a module listed as long no longer exists"
