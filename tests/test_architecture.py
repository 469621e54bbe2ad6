"""The package's structure, read from its source: one-way layers, no import circle, no private reach.

Layers, lowest first (a module may import its own layer and the ones below, never above):

    0 core          episode_sampler.core.*                      the pure order
    1 data          episode_sampler.lerobot.*                   LeRobot v3 datasets
    2 adapters      sampler, node, mixture, distributed, pipeline_check, lookahead
    3 integrations  episode_sampler.integrations.*
    4 cli           episode_sampler.cli.*

``episode_sampler/__init__.py`` is the facade: it lazily re-exports the public names of every layer
(and holds ``__version__``); only the command line imports it. Function-level imports count like
module-level ones.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "episode_sampler"
PACKAGE = "episode_sampler"
ADAPTERS = {"sampler", "node", "mixture", "distributed", "pipeline_check", "lookahead"}
LAYER_NAMES = ("core", "data", "adapters", "integrations", "cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> int | None:
    """The layer of a module of ours, ``None`` for the facade."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    top = parts[1]
    if top == "core":
        return 0
    if top == "lerobot":
        return 1
    if top in ADAPTERS:
        return 2
    if top == "integrations":
        return 3
    if top == "cli":
        return 4
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_architecture.py's map")


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(mod, path, node)
                # ``from . import x`` may name a submodule
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t == PACKAGE or t.startswith(PACKAGE + "."):
                    while t not in mods and "." in t:  # an object inside a module
                        t = t.rsplit(".", 1)[0]
                    if t != mod:
                        graph[mod].add(t)
    return graph


def is_type_checking_only(path: Path) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (imports for the type checker only)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


MODS = modules()
GRAPH = imports(MODS)


def test_every_module_has_a_layer():
    for mod in MODS:
        layer(mod)


def test_layers_point_one_way():
    wrong = []
    for mod, deps in GRAPH.items():
        mine = layer(mod)
        for dep in deps:
            theirs = layer(dep)
            if theirs is None:
                if mine != LAYER_NAMES.index("cli"):  # the command line may read __version__ there
                    wrong.append(f"{mod} imports the facade {dep} (import the defining module)")
            elif mine is not None and theirs > mine:
                wrong.append(f"{mod} ({LAYER_NAMES[mine]}) imports {dep} ({LAYER_NAMES[theirs]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle():
    # depth-first search over every edge, function-level imports included
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        stack.append(mod)
        for dep in sorted(GRAPH.get(mod, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[mod] = 2

    for mod in sorted(MODS):
        if mod not in state:
            visit(mod)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_core_imports_nothing_of_ours_outside_core():
    for mod, deps in GRAPH.items():
        if layer(mod) == 0:
            assert all(layer(d) == 0 for d in deps), (mod, sorted(deps))


def test_only_the_cli_and_the_facade_reach_the_integrations_and_nothing_reaches_the_cli():
    for mod, deps in GRAPH.items():
        for dep in deps:
            if dep.startswith(f"{PACKAGE}.cli"):
                assert mod.startswith(f"{PACKAGE}.cli"), (mod, dep)
            if dep.startswith(f"{PACKAGE}.integrations"):
                assert mod == PACKAGE or mod.startswith((f"{PACKAGE}.integrations", f"{PACKAGE}.cli")), (
                    mod,
                    dep,
                )


def test_no_private_torchdata_name_in_src():
    bad = []
    for mod, path in MODS.items():
        text = path.read_text()
        if "_BaseNode__" in text:
            bad.append(f"{mod}: BaseNode's name-mangled private attribute")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torchdata"):
                if any(p.startswith("_") for p in (node.module or "").split(".")):
                    bad.append(f"{mod}: imports the private module {node.module}")
                bad += [
                    f"{mod}: imports {node.module}.{a.name}" for a in node.names if a.name.startswith("_")
                ]
    assert not bad, "\n".join(bad)


def test_the_node_keeps_to_torchdatas_protocol():
    tree = ast.parse((SRC / "node.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "EpisodeSamplerNode"]
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    assert {"reset", "next", "get_state"} <= methods
    assert not methods & {"__next__", "__iter__", "__init_subclass__", "state_dict"}


def private_names_defined(path: Path) -> set[str]:
    """``_name`` attributes a module defines: ``self._x = ...``, class-level ``_x``, ``def _x``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("_"):
                    names.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    for t in item.targets if isinstance(item, ast.Assign) else [item.target]:
                        if isinstance(t, ast.Name) and t.id.startswith("_"):
                            names.add(t.id)
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "__slots__":
                    continue
            for item in node.body:
                if isinstance(item, ast.Assign) and any(
                    getattr(t, "id", "") == "__slots__" for t in item.targets
                ):
                    names.update(
                        e.value
                        for e in ast.walk(item.value)
                        if isinstance(e, ast.Constant) and str(e.value).startswith("_")
                    )
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if getattr(node.value, "id", None) == "self" and node.attr.startswith("_"):
                names.add(node.attr)
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}


def test_no_module_reads_another_modules_private_attributes():
    defined = {mod: private_names_defined(path) for mod, path in MODS.items()}
    owners: dict[str, set[str]] = defaultdict(set)
    for mod, names in defined.items():
        for name in names:
            owners[name].add(mod)
    bad = []
    for mod, path in MODS.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                not isinstance(node, ast.Attribute)
                or not node.attr.startswith("_")
                or node.attr.startswith("__")
            ):
                continue
            if getattr(node.value, "id", None) in ("self", "cls"):
                continue
            others = owners.get(node.attr, set()) - {mod}
            if others and node.attr not in defined[mod]:
                bad.append(f"{mod}:{node.lineno} reads .{node.attr} of {sorted(others)}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("suffix", [".c", ".pyx", ".so", ".pyd"])
def test_no_compiled_code(suffix):
    assert not list(SRC.rglob(f"*{suffix}"))
    assert not (SRC.parents[1] / "setup.py").exists()


@pytest.mark.slow
def test_the_library_does_not_import_the_cli() -> None:
    code = (
        "import sys, episode_sampler, episode_sampler.lerobot, episode_sampler.node; "
        "print(sorted(m for m in sys.modules if m.startswith('episode_sampler.cli')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
