"""The package's folders are layers: imports point down, never in a cycle."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import chat_server

PACKAGE = Path(chat_server.__file__).parent
#: Lower layers first; a module may import its own layer or lower ones.
LAYERS = ("core", "stores", "transport", "edges", "top")
#: Libraries the chat's rules must not know.
TRANSPORT_LIBRARIES = ("aiohttp", "socketio", "engineio", "redis", "marshmallow")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "top"


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, TYPE_CHECKING imports included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}: relative import of {node.module}"
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {i for i in _imports(path) if i in modules and i != name}
        for name, path in modules.items()
    }


def test_every_import_of_the_package_points_to_its_own_layer_or_below() -> None:
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))
    ]
    assert upward == []


def test_the_chats_rules_import_no_transport_or_storage_library() -> None:
    offenders = [
        f"{_module_name(path)} imports {name}"
        for path in (PACKAGE / "core").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in TRANSPORT_LIBRARIES
    ]
    assert offenders == []


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph()
    # Packages import their submodules through __init__; that is no cycle.
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_nothing_reads_the_environment_but_the_command_line() -> None:
    readers = sorted(
        _module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "os.environ" in path.read_text() or "getenv" in path.read_text()
    )
    assert readers == ["chat_server.__main__"]


def test_the_module_map_in_the_docs_names_every_module_and_no_other() -> None:
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"^\| `([a-z_/]+\.py)` \|", doc, flags=re.MULTILINE))
    modules = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent.name == "stores"
    }
    assert sorted(modules - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - modules) == [], "docs/architecture.md names modules that do not exist"
