"""The package's shape: imports go down the layers of ARCHITECTURE.md, with no cycle;
``__all__`` lists every public name; every public function documents its parameters and what it returns."""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "atomtools"

#: (prefix, layer): the longest matching prefix decides a module's layer.
LAYERS = [
    ("atomtools.utils", 0),
    ("atomtools.core", 1),
    ("atomtools.models", 2),
    ("atomtools.storage", 2),
    ("atomtools.data", 2),
    ("atomtools.readers", 2),
    ("atomtools.io", 3),  # re-exports atomtools.readers and atomtools.core.dose for old code
    ("atomtools.simulation", 3),
    ("atomtools.training", 3),
    ("atomtools.inference", 3),
    ("atomtools.columns", 4),
    ("atomtools.tomo", 4),
    ("atomtools.localize", 4),
    ("atomtools.registry", 5),
    ("atomtools.provenance", 5),
    ("atomtools.plotting", 5),
    ("atomtools.pipeline", 5),
    ("atomtools.cli", 5),
    ("atomtools.__main__", 5),
    ("atomtools", 6),  # the package's lazy front door
]
EDGE = 5


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def layer(module: str) -> int | None:
    """The layer of a module: its longest matching prefix (the package itself only by its own name)."""
    matches = [p for p, _ in LAYERS if module == p or (p != "atomtools" and module.startswith(p + "."))]
    return dict(LAYERS)[max(matches, key=len)] if matches else None


def group(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to."""
    return ".".join(module.split(".")[:2])


def _resolve(module: str, path: Path, node: ast.AST) -> list[str]:
    """atomtools modules an import statement reads (whole statement, any depth)."""
    is_package = path.name == "__init__.py"
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "atomtools"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "atomtools":
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


def imports() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = {t for node in ast.walk(tree) for t in _resolve(module, path, node) if t != module}
    return graph


GRAPH = imports()


def test_every_module_has_a_layer():
    missing = [module for module in MODULES if layer(module) is None]
    assert not missing, f"modules with no layer in LAYERS (add their subpackage): {missing}"
    assert layer("atomtools.readers_of_tomorrow") is None  # the package's own name is no catch-all


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer, or sideways between subpackages below the edge."""
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            if target not in MODULES:
                wrong.append(f"{module} imports {target}, which does not exist")
                continue
            lm, lt = layer(module), layer(target)
            same_group = group(module) == group(target)
            if lt > lm or (lt == lm and not same_group and lm != EDGE):
                wrong.append(f"{module} (layer {lm}) imports {target} (layer {lt})")
    return wrong


def test_imports_only_go_down_the_layers():
    wrong = layer_violations(GRAPH)
    assert not wrong, "\n".join(wrong)


def test_a_planted_upward_import_is_caught():
    planted = {**GRAPH, "atomtools.core.imaging": GRAPH["atomtools.core.imaging"] | {"atomtools.columns.retrieval"}}
    assert layer_violations(planted) == [
        "atomtools.core.imaging (layer 1) imports atomtools.columns.retrieval (layer 4)"
    ]
    sideways = {**GRAPH, "atomtools.tomo.classical": GRAPH["atomtools.tomo.classical"] | {"atomtools.localize"}}
    assert any("atomtools.tomo.classical" in w for w in layer_violations(sideways))


#: Third-party packages the core may import: numerical and crystal libraries, no simulator,
#: network or reader (those live in the layers above it).
CORE_ALLOWED = {"numpy", "scipy", "pandas", "ase", "skimage"}


def third_party(source: str) -> set[str]:
    """Top-level names of the non-atomtools, non-standard-library packages a source imports."""
    import sys

    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n != "atomtools" and n not in sys.stdlib_module_names}


def core_violations(sources: dict[str, str]) -> list[str]:
    return [
        f"{module} imports {sorted(third_party(src) - CORE_ALLOWED)}"
        for module, src in sources.items()
        if layer(module) <= 1 and third_party(src) - CORE_ALLOWED
    ]


CORE_SOURCES = {m: p.read_text(encoding="utf-8") for m, p in MODULES.items() if (layer(m) or 9) <= 1}


def test_the_core_imports_no_engine():
    wrong = core_violations(CORE_SOURCES)
    assert not wrong, "\n".join(wrong)


def test_a_planted_abtem_import_in_the_core_is_caught():
    planted = {
        **CORE_SOURCES,
        "atomtools.core.imaging": "import numpy as np\nfrom abtem.core.energy import energy2wavelength\n",
    }
    assert core_violations(planted) == ["atomtools.core.imaging imports ['abtem']"]
    lazy = {"atomtools.core.optics": "def f():\n    import torch\n    return torch\n"}
    assert core_violations(lazy) == ["atomtools.core.optics imports ['torch']"]  # inside a function too


def test_there_is_no_import_cycle():
    """Depth-first search over every import, at module level or inside functions."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if t == group(m) or m.startswith(t + "."):
                continue  # a module reading its own package's front door is a re-export, not a cycle
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t) :] + [t]))
            elif t in GRAPH and not state.get(t):
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if not state.get(m):
            visit(m)
    assert not cycles, "\n".join(cycles)


def test_the_check_catches_an_upward_import():
    """The layer rule is not vacuous: an engine reading an edge is flagged."""
    fake = ast.parse("from ..registry import names").body[0]
    (target,) = _resolve("atomtools.simulation.hrtem", PACKAGE / "simulation" / "hrtem.py", fake)
    assert target == "atomtools.registry" and layer(target) > layer("atomtools.simulation.hrtem")


PUBLIC = [m for m in MODULES if m != "atomtools" and not m.endswith("__main__")]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_lists_every_public_definition(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    defined = {
        n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")
    }
    missing = defined - set(module.__all__)
    assert not missing, f"{name}.__all__ misses {sorted(missing)}"
    unknown = [n for n in module.__all__ if not hasattr(module, n)]
    assert not unknown, f"{name}.__all__ names what it does not define: {unknown}"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_functions_document_their_parameters(name):
    module = importlib.import_module(name)
    undocumented = []
    for attr in module.__all__:
        obj = getattr(module, attr)
        if not inspect.isfunction(obj) or obj.__module__ != name:
            continue
        params = [
            p for p in inspect.signature(obj).parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        if params and "Parameters\n    ----------" not in (obj.__doc__ or ""):
            undocumented.append(attr)
    assert not undocumented, f"{name}: no numpydoc Parameters section in {undocumented}"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_functions_document_what_they_return(name):
    module = importlib.import_module(name)
    undocumented = []
    for attr in module.__all__:
        obj = getattr(module, attr)
        if not inspect.isfunction(obj) or obj.__module__ != name:
            continue
        if _lacks_returns(inspect.getsource(obj), obj.__doc__ or ""):
            undocumented.append(attr)
    assert not undocumented, f"{name}: no numpydoc Returns (or Yields) section in {undocumented}"


#: Definitions whose returns and yields are their own, not those of the function around them.
_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _own_nodes(node: ast.AST):
    """Every node below ``node``, skipping nested functions, lambdas and classes (and all inside them)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _NESTED):
            continue
        yield child
        yield from _own_nodes(child)


def _gives_a_value(node: ast.AST) -> bool:
    if isinstance(node, (ast.Yield, ast.YieldFrom)):
        return True
    return (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    )


def _lacks_returns(func_source: str, doc: str) -> bool:
    """Whether a function returns a value (``return <expr>``, not ``None``) or yields, is not annotated
    ``-> None``, and ``doc`` has no numpydoc Returns (or Yields) section."""
    func = ast.parse(textwrap.dedent(func_source)).body[0]
    if isinstance(func.returns, ast.Constant) and func.returns.value is None:
        return False
    if not any(_gives_a_value(node) for node in _own_nodes(func)):
        return False
    return "Returns\n    -------" not in doc and "Yields\n    ------" not in doc


_PLANTED = '''
def scale(x, factor=2.0):
    """Scale ``x``.

    Parameters
    ----------
    x : float
        The value.
    factor : float
        The factor.
    """
    return x * factor
'''

_NESTED_ONLY = '''
def register(table):
    """Put lookups in ``table``.

    Parameters
    ----------
    table : dict
        Where they go.
    """

    def lookup(key):
        return table[key]

    class Entry:
        def value(self):
            return 1

    def keys():
        yield from table

    table.update(get=lookup, entry=Entry, keys=keys, first=lambda: next(iter(table)))
    return None
'''


def test_the_returns_check_catches_a_missing_section():
    doc = ast.get_docstring(ast.parse(_PLANTED).body[0], clean=False)
    assert _lacks_returns(_PLANTED, doc)
    assert not _lacks_returns(_PLANTED, doc + "\n    Returns\n    -------\n    float\n        The product.\n    ")
    assert not _lacks_returns(_PLANTED.replace("factor=2.0):", "factor=2.0) -> None:"), doc)
    generator = _PLANTED.replace("return x * factor", "yield x * factor")
    assert _lacks_returns(generator, doc)
    # values returned or yielded only by nested definitions are not the function's own
    nested_doc = ast.get_docstring(ast.parse(_NESTED_ONLY).body[0], clean=False)
    assert not _lacks_returns(_NESTED_ONLY, nested_doc)
    assert _lacks_returns(_NESTED_ONLY.replace("return None", "return table"), nested_doc)


# -- one export style -------------------------------------------------------------------------

SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def export_problems(source: str, members: list[str]) -> list[str]:
    """What breaks the one export style in a subpackage's ``__init__.py`` (empty: none).

    The style: the docstring, ``from . import`` every module of the package, ``from .m
    import *`` for each module that forms the front door, and ``__all__ = [*m.__all__,
    ...]`` naming exactly those modules, in the same order. Nothing else: no hand-picked
    names, no names from other packages.
    """
    problems, imported, starred, listed = [], [], [], None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            imported += [a.name for a in node.names if a.asname is None]
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1 and [a.name for a in node.names] == ["*"]:
            starred.append(node.module)
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            value = node.value
            if getattr(target, "id", None) == "__all__" and isinstance(value, ast.List):
                items = value.elts
                ok = all(
                    isinstance(e, ast.Starred)
                    and isinstance(e.value, ast.Attribute)
                    and e.value.attr == "__all__"
                    and isinstance(e.value.value, ast.Name)
                    for e in items
                )
                if ok:
                    listed = [e.value.value.id for e in items]
                    continue
        problems.append(f"line {node.lineno}: {ast.unparse(node)[:60]!r} is not part of the export style")
    if sorted(imported) != sorted(members):
        problems.append(f"'from . import' lists {sorted(imported)}, the package holds {sorted(members)}")
    if not set(starred) <= set(members):
        problems.append(f"star-imports {sorted(set(starred) - set(members))}, not modules of the package")
    if listed is None:
        problems.append("no __all__ = [*module.__all__, ...]")
    elif listed != starred:
        problems.append(f"__all__ gathers {listed}, the star imports are {starred}")
    return problems


def _members(package: str) -> list[str]:
    folder = PACKAGE / package
    return sorted(
        [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
        + [p.parent.name for p in folder.glob("*/__init__.py")]
    )


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_subpackage_exports_one_way(package):
    source = (PACKAGE / package / "__init__.py").read_text(encoding="utf-8")
    assert not export_problems(source, _members(package))
    module = importlib.import_module(f"atomtools.{package}")
    duplicated = sorted({n for n in module.__all__ if module.__all__.count(n) > 1})
    assert not duplicated, f"atomtools.{package}.__all__ names {duplicated} twice"
    assert all(hasattr(module, n) for n in module.__all__)
    shadowed = sorted(set(module.__all__) & set(_members(package)))
    assert not shadowed, f"atomtools.{package} exports {shadowed}, which hide the modules of that name"


def test_the_export_check_catches_a_hand_picked_name():
    good = '"""Doc."""\nfrom . import a, b\nfrom .a import *  # noqa\n\n__all__ = [*a.__all__]\n'
    assert export_problems(good, ["a", "b"]) == []
    picked = good.replace("from .a import *  # noqa", "from .a import thing")
    assert any("not part of the export style" in p for p in export_problems(picked, ["a", "b"]))
    assert any("package holds" in p for p in export_problems(good, ["a", "b", "c"]))
    unlisted = good.replace("[*a.__all__]", '["thing"]')
    assert any("no __all__" in p for p in export_problems(unlisted, ["a", "b"]))
