"""hfssl: self-supervised learning for medical images, native to the Hugging Face Hub.

``import hfssl`` registers hfssl's config and model classes with transformers' ``Auto*``
factories, so that ``AutoModel.from_pretrained(path_or_repo)`` works afterwards without
``trust_remote_code``. Public names are resolved lazily (PEP 562) so that submodules such as
``hfssl.data`` stay cheap to import on their own.

The ``hfssl`` console script sets ``HFSSL_LAZY_INIT=1`` while it starts, which defers that
registration (importing transformers' modeling code costs seconds) until a subcommand
imports ``hfssl.models``; ``hfssl --help`` stays instant.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY_ATTRS: dict[str, str] = {
    "HfsslError": "hfssl.errors",
    "HfsslConfig": "hfssl.models",
    "HfsslModel": "hfssl.models",
    "HfsslForImageClassification": "hfssl.models",
    "HfsslForSegmentation": "hfssl.models",
    "load_source": "hfssl.data",
    "create_pretext_model": "hfssl.pretext",
    "list_pretext_tasks": "hfssl.pretext",
    # pretraining: hfssl.pretrain_backbone(ModelArguments(...), DataArguments(...), PretrainingArguments(...));
    # "hfssl.pretrain" is the module behind ``python -m hfssl.pretrain`` (the command line)
    "pretrain_backbone": "hfssl.training",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_ATTRS.get(name)
    if module is None:
        raise AttributeError(f"module 'hfssl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY_ATTRS))


if os.environ.get("HFSSL_LAZY_INIT") != "1" and importlib.util.find_spec("hfssl.models") is not None:
    importlib.import_module("hfssl.models")  # registers the Auto* classes
    importlib.import_module("hfssl.pretext").register_all()  # ... and every pretext task's
