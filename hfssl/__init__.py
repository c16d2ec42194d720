"""hfssl: self-supervised learning for medical images, native to the Hugging Face Hub.

``import hfssl`` registers hfssl's config and model classes (backbone, task models, every
pretext method) with transformers' ``Auto*`` factories, so that
``AutoModel.from_pretrained(path_or_repo)`` works afterwards without ``trust_remote_code``.
transformers takes registrations only as classes, and those import torch; so the registration
happens when transformers' ``Auto*`` machinery is imported, not before (see
:mod:`hfssl._autoregister`): ``import hfssl`` itself stays cheap, and ``hfssl --help`` never
imports torch. Public names are resolved lazily (PEP 562) for the same reason.
"""

from __future__ import annotations

import importlib
from typing import Any

from hfssl import _autoregister
from hfssl.version import __version__ as __version__

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


_autoregister.install()
