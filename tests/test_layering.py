"""The import rules of DESIGN.md's "Layering rules", checked on every module's imports.

Imports are read from the source (AST), everywhere in a module: at the top, inside functions,
under ``if TYPE_CHECKING:``, and ``importlib.import_module("...")`` calls with a literal name.

* ``hfssl`` (the library) never imports ``eval_suite``; only ``hfssl/cli/`` may (``evaluate``,
  ``leaderboard``, ``study``, ``demo``, ``push`` hand it to the library as arguments).
* The engines never import the CLI: outside ``hfssl/cli/`` only the ``-m`` entry modules
  (``hfssl/__main__.py``, ``hfssl/pretrain.py``) import ``hfssl.cli``.
* ``eval_suite`` uses ``hfssl``'s public API only: no ``hfssl.cli``, no underscore-private module
  (``hfssl.x._y``) and no underscore-private name (``from hfssl.x import _y``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CLI_ENTRY_MODULES = {"hfssl/__main__.py", "hfssl/pretrain.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` for every import in ``path``; ``name`` is None for ``import module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            for alias in node.names:
                yield node.lineno, module, alias.name
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value, None


def _files(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_walker_sees_imports_inside_functions() -> None:
    found = {(m, n) for _, m, n in imports_of(REPO_ROOT / "hfssl" / "cli" / "push.py")}
    assert ("eval_suite.results", None) in found  # imported inside run()


def test_hfssl_never_imports_eval_suite_outside_the_cli() -> None:
    bad = [
        f"{_rel(path)}:{line} imports {module}"
        for path in _files("hfssl")
        if not _rel(path).startswith("hfssl/cli/")
        for line, module, _ in imports_of(path)
        if _within(module, "eval_suite")
    ]
    assert not bad, "the library must not import eval_suite (hand records in from hfssl/cli/):\n" + "\n".join(
        bad
    )


def test_only_the_cli_and_its_entry_modules_import_the_cli() -> None:
    bad = [
        f"{_rel(path)}:{line} imports {module}"
        for path in _files("hfssl")
        if not _rel(path).startswith("hfssl/cli/") and _rel(path) not in CLI_ENTRY_MODULES
        for line, module, name in imports_of(path)
        if _within(module, "hfssl.cli") or (module == "hfssl" and name == "cli")
    ]
    assert not bad, "engines expose typed functions; argv and exit codes belong to hfssl/cli/:\n" + "\n".join(
        bad
    )


@pytest.mark.parametrize("path", _files("eval_suite"), ids=_rel)
def test_eval_suite_uses_the_public_hfssl_api(path: Path) -> None:
    bad = []
    for line, module, name in imports_of(path):
        if not _within(module, "hfssl"):
            continue
        where = f"{_rel(path)}:{line}"
        if _within(module, "hfssl.cli") or (module == "hfssl" and name == "cli"):
            bad.append(f"{where} imports the CLI ({module})")
        elif any(_is_private(part) for part in module.split(".")):
            bad.append(f"{where} imports the private module {module}")
        elif name is not None and _is_private(name):
            bad.append(f"{where} imports the private name {module}.{name}")
    assert not bad, "\n".join(bad)
