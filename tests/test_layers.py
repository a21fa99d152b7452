"""The package's layering (issue #14): imports only point down.

Every module under ``ipallow/`` is parsed with ``ast`` -- imports inside functions
included, ``if TYPE_CHECKING:`` blocks excluded -- and the import graph is checked:

* no cycle (a function-level import hides a cycle from Python, not from this test);
* no production module imports ``ipallow.synth`` (seeded test and benchmark data);
* no command module imports another one (``commands/_*.py`` helpers are shared);
* every import points to a lower layer of :data:`LAYERS`, or within its own layer.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path


PACKAGE = "ipallow"
# Found, not imported: the graph is read from the source that the tests run against.
SOURCE = Path(importlib.util.find_spec(PACKAGE).origin).resolve().parent

#: Lowest first.  A module may import modules of its own layer or of the layers
#: before it, never after.  ``ipallow`` (the package, which re-exports) is the top.
LAYERS: list[tuple[str, set[str]]] = [
    ("errors", {"errors", "_version"}),
    ("core", {"_parse", "_hugepages", "_blocks", "_compile", "_output", "_cidrtext"}),   # and the compiled _trie
    ("prefixes", {"_prefixes"}),
    ("columns", {"_columns", "_delimited"}),
    # ipallow.snapshot: the layout, the data encoding and the lease, then validating, writing, reading
    ("snapshot parts", {"snapshot._layout", "snapshot._registration_data", "snapshot._lease"}),
    ("snapshot files", {"snapshot._header", "snapshot._write", "snapshot._read", "snapshot._cover"}),
    ("sources", {"_csvrecords", "_formats", "_lineblocks", "snapshot"}),
    # ipallow.registry: time and id order, the record (and a bulk load's columns of records), the
    # registry, then its file readers
    ("records", {"registry._time", "registry._ids", "registry._frozenmap", "registry._fields", "registry._record",
                 "registry._columnar"}),
    ("registry", {"registry._registry"}),
    ("registry files", {"registry._rows", "registry._bulk", "registry._io", "registry"}),
    ("loader", {"loaders"}),
    ("algebra", {"setops"}),              # below the facade: Allowlist's operators call it
    ("mmdb", {"mmdb._encode", "mmdb._decode", "mmdb._tree", "mmdb._where", "mmdb"}),   # Allowlist.export_mmdb / from_mmdb
    ("facade", {"allowlist"}),
    # ipallow.live: the timed list, the watched file, the thread, then the serving object
    ("live parts", {"live._timed", "live._watch", "live._poller"}),
    ("features", {"live._live", "live", "live.metrics", "diff", "export", "dataframe._dask", "dataframe._public", "dataframe", "synth",
                  # ipallow.bench: its defaults, the prefix table, queries, peers, agreement, timing, the run, the plot
                  "bench._defaults", "bench._table", "bench._queries", "bench._peers", "bench._compare",
                  "bench._timing", "bench._run", "bench._plot", "bench"}),
    ("commands", {"commands", "commands._common", "commands._format", "commands._progress",
                  "commands._lifecycle", "commands._filterblock", "commands._overlaps",
                  "commands.bench", "commands.check", "commands.compile", "commands.diff",
                  "commands.export", "commands.filter", "commands.info", "commands.setops", "commands.stats",
                  "commands.validate"}),
    ("cli", {"cli"}),
]
TOP = PACKAGE                 # ipallow/__init__.py: imports anything, imported as a whole by nobody below
TEST_DATA = PACKAGE + ".synth"
#: The benchmark runner generates its seeded queries with synth; it is benchmark code itself.
TEST_DATA_USERS = {PACKAGE + ".bench._queries"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


MODULES = {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node that runs, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _reexports() -> dict[str, str]:
    """Names the package re-exports (``from ipallow import Allowlist``) -> the module defining them."""
    found = {}
    tree = ast.parse(MODULES[TOP].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE + "."):
            for alias in node.names:
                found[alias.asname or alias.name] = node.module
        # The lazy table: _WHERE = {"Allowlist": "ipallow.allowlist", ...}, resolved on first use.
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_WHERE" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            for key, value in zip(node.value.keys, node.value.values):
                found[ast.literal_eval(key)] = ast.literal_eval(value)
    found.setdefault("diff", f"{PACKAGE}.diff")      # the function, served by a property of the package
    return found


REEXPORTS = _reexports()


def imports_of(name: str) -> set[str]:
    """The ipallow modules ``name`` imports at run time (anywhere in the file)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"), str(MODULES[name]))
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    found.add(submodule)
                elif source == PACKAGE and alias.name in REEXPORTS:
                    found.add(REEXPORTS[alias.name])
                else:
                    found.add(source)
    found.discard(name)
    return {m for m in found if m in MODULES}


GRAPH = {name: imports_of(name) for name in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (each one a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _below_top() -> dict[str, set[str]]:
    # The package re-exports everything, so any module "importing ipallow" would close
    # a circle through it; it is the top and is not counted as a target.
    return {m: targets - {TOP} for m, targets in GRAPH.items()}


def test_the_graph_sees_function_level_imports():
    # A check that finds nothing because it reads nothing would pass forever.
    assert len(MODULES) > 20
    assert f"{PACKAGE}.allowlist" in GRAPH[f"{PACKAGE}.cli"] | GRAPH[f"{PACKAGE}.commands._common"]
    assert all(m.startswith(PACKAGE) for targets in GRAPH.values() for m in targets)
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(cyclic) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = strongly_connected(_below_top())
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in cycles)


def test_production_code_does_not_import_the_test_data_generator():
    offenders = sorted(m for m, targets in GRAPH.items() if TEST_DATA in targets and m not in TEST_DATA_USERS)
    assert not offenders, f"{TEST_DATA} is test and benchmark data only; imported by {offenders}"


def _is_command(name: str) -> bool:
    prefix = PACKAGE + ".commands."
    return name.startswith(prefix) and not name[len(prefix):].startswith("_")


def test_no_command_imports_another():
    offenders = sorted((m, t) for m, targets in GRAPH.items() if _is_command(m)
                       for t in targets if _is_command(t))
    assert not offenders, f"commands importing commands (share through commands/_*.py): {offenders}"


def _layer_of() -> dict[str, int]:
    layer = {}
    for number, (_, names) in enumerate(LAYERS):
        for short in names:
            layer[f"{PACKAGE}.{short}"] = number
    layer[TOP] = len(LAYERS)
    return layer


def test_every_module_has_a_layer():
    layer = _layer_of()
    assert sorted(set(MODULES) - set(layer)) == [], "place the new module in LAYERS"
    assert sorted(set(layer) - set(MODULES)) == [], "LAYERS names a module that does not exist"


def test_imports_point_down():
    layer = _layer_of()
    upward = sorted(f"{m} ({LAYERS[layer[m]][0]}) imports {t} ({LAYERS[layer[t]][0] if t != TOP else 'top'})"
                    for m, targets in _below_top().items() if m != TOP
                    for t in targets if layer[t] > layer[m])
    assert not upward, "imports pointing up:\n  " + "\n  ".join(upward)
