"""Hub integration: load any checkpoint as a feature extractor, push checkpoints with model cards.

* :func:`load_feature_extractor` - hfssl folders / repo ids, ``timm:``, ``hf-hub:``, transformers;
* :func:`push_checkpoint` - one commit with weights, config, card and results (``hfssl push``);
* :func:`render_card` - the model card from ``model_cards/`` (:mod:`hfssl.hub.cards`).

Heavy modules (torch, huggingface_hub, jinja2) are imported when a function is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "ExtractorInfo": "hfssl.hub.feature_extractor",
    "FeatureExtractor": "hfssl.hub.feature_extractor",
    "load_feature_extractor": "hfssl.hub.load_any",
    "PushResult": "hfssl.hub.push",
    "push_checkpoint": "hfssl.hub.push",
    "render_card": "hfssl.hub.cards",
    "read_checkpoint": "hfssl.hub.cards",
    "method_family": "hfssl.hub.cards",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hfssl.hub' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
