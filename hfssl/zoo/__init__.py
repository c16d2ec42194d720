"""The hfssl model zoo: the manifest of released checkpoints, the local store, ``zoo:NAME`` specs.

``load_manifest()`` reads ``hfssl/zoo/zoo.yaml`` (one :class:`ZooEntry` per checkpoint);
:class:`ZooStore` holds built entries; ``resolve_zoo_spec("zoo:NAME")`` gives the local folder of
an entry (built here or pulled), which is how ``zoo:NAME`` works wherever a checkpoint is
accepted. Building (pretrain -> evaluate -> card) is ``eval_suite.zoo``; the command is ``hfssl zoo``.
"""

from __future__ import annotations

from hfssl.zoo.manifest import BUDGETS, ZooEntry, ZooManifest, load_manifest, recipes_dir
from hfssl.zoo.store import ZooStore, parse_zoo_spec, resolve_zoo_spec


def _init_from_folder(rest: str) -> str:
    """``--init-from zoo:NAME``: the entry folder (its ``pretext_model/`` holds the heads)."""
    return str(resolve_zoo_spec(f"zoo:{rest}"))


def _register() -> None:
    from hfssl.training.init_from import register_spec_resolver

    register_spec_resolver("zoo", _init_from_folder)


_register()

__all__ = [
    "BUDGETS",
    "ZooEntry",
    "ZooManifest",
    "ZooStore",
    "load_manifest",
    "parse_zoo_spec",
    "recipes_dir",
    "resolve_zoo_spec",
]
