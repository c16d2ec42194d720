"""Method modules never import each other: shared parts live in hfssl.pretext.shared / base / blocks."""

from __future__ import annotations

import ast
from pathlib import Path

from hfssl.pretext.registry import METHODS

PRETEXT = Path(__file__).resolve().parents[2] / "hfssl" / "pretext"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.update(f"hfssl.pretext.{node.module or alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_method_module_imports_another():
    method_modules = {info.module for info in METHODS.values()}
    assert method_modules, "no methods registered"
    offenders = []
    for module in sorted(method_modules):
        path = PRETEXT / f"{module.rsplit('.', 1)[-1]}.py"
        others = (_imported_modules(path) & method_modules) - {module}
        offenders += [f"{module} imports {other}" for other in sorted(others)]
    assert not offenders, offenders


def test_every_pretext_file_is_a_method_or_shared():
    """A new file under hfssl/pretext/ is a method (with a registry line) or one of the shared modules."""
    shared = {"__init__", "base", "factory", "multi", "registry", "shared"}
    methods = {info.module.rsplit(".", 1)[-1] for info in METHODS.values()}
    files = {p.stem for p in PRETEXT.glob("*.py")}
    assert files - shared <= methods, files - shared - methods
