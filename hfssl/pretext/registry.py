"""Registry of pretext tasks: names → model classes, and multi-SSL specs like ``rot:0.5+simclr``.

Each method lives in its own module and registers itself with :func:`register_pretext` when
imported; ``_METHOD_MODULES`` says which module to import for a name, so that asking for one
method imports only that method's file.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hfssl.errors import ConfigError

if TYPE_CHECKING:
    from hfssl.pretext.base import PretextModel

# name -> module defining it (the paper's ten methods + MoCo v2 and MAE); add one line per new method.
_METHOD_MODULES: dict[str, str] = {
    "rpl": "hfssl.pretext.rpl",
    "rot": "hfssl.pretext.rot",
    "jigsaw": "hfssl.pretext.jigsaw",
    "rkb": "hfssl.pretext.rkb",
    "rkb_plus": "hfssl.pretext.rkb",
    "ae": "hfssl.pretext.ae",
    "mg": "hfssl.pretext.mg",
    "simclr": "hfssl.pretext.simclr",
    "byol": "hfssl.pretext.byol",
    "pcrl": "hfssl.pretext.pcrl",
    "mocov2": "hfssl.pretext.mocov2",
    "mae": "hfssl.pretext.mae",
}

_REGISTRY: dict[str, type[PretextModel]] = {}


def register_pretext(name: str):
    """Class decorator: make a ``PretextModel`` subclass available as ``name``."""

    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(
                f"pretext task {name!r} registered twice ({_REGISTRY[name].__name__}, {cls.__name__})"
            )
        _REGISTRY[name] = cls
        cls.method_name = name
        _register_auto(cls)
        return cls

    return wrap


def _register_auto(cls) -> None:
    """Make ``AutoConfig`` / ``AutoModelForPreTraining`` load this method's checkpoints (no remote code)."""
    from transformers import AutoConfig, AutoModelForPreTraining

    from hfssl.pretext.base import convert_strict_errors

    config_class = convert_strict_errors(cls.config_class)
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModelForPreTraining.register(config_class, cls, exist_ok=True)


def list_pretext_tasks() -> list[str]:
    """Names of every single pretext task (combinations are written ``rot+simclr``)."""
    return list(_METHOD_MODULES)


def get_pretext_class(name: str) -> type[PretextModel]:
    """The model class of one pretext task, importing its module on first use."""
    key = name.strip().lower().replace("-", "_")
    key = "rkb_plus" if key == "rkb+" else key
    if key not in _METHOD_MODULES:
        raise ConfigError(
            f"unknown pretext task {name!r}",
            f"use one of {', '.join(_METHOD_MODULES)}, or a combination such as rot+simclr",
        )
    if key not in _REGISTRY:
        importlib.import_module(_METHOD_MODULES[key])
    return _REGISTRY[key]


@dataclass(frozen=True)
class MethodSpec:
    """One parsed multi-SSL spec: method names and their loss weights (``None`` = learned)."""

    methods: tuple[str, ...]
    weights: tuple[float | None, ...]

    @property
    def is_multi(self) -> bool:
        return len(self.methods) > 1

    def __str__(self) -> str:
        parts = [
            f"{m}:learned" if w is None else m if w == 1.0 else f"{m}:{w:g}"
            for m, w in zip(self.methods, self.weights)
        ]
        return "+".join(parts)


_TERM = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?::\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|learned))?\s*$")


def parse_method_spec(spec: str) -> MethodSpec:
    """Parse ``"rot"``, ``"rot+simclr"`` or ``"rot:0.5+simclr:1"`` (``:learned`` = uncertainty weight).

    ``rkb+`` is accepted as a spelling of ``rkb_plus``.
    """
    # "rkb+" names RKB+ only where the '+' cannot be a separator ("rkb+simclr" is two methods).
    text = re.sub(r"rkb\+(?=$|\+|:)", "rkb_plus", spec.strip().lower())
    if not text:
        raise ConfigError(
            "empty pretext method", "give a method such as rot, or a combination such as rot+simclr"
        )
    methods: list[str] = []
    weights: list[float | None] = []
    for term in text.split("+"):
        match = _TERM.match(term)
        if not match:
            raise ConfigError(
                f"cannot read pretext method spec {spec!r} at {term!r}",
                "write methods joined by '+', each optionally ':weight', e.g. rot:0.5+simclr:1",
            )
        name = match.group(1).replace("-", "_")
        if name not in _METHOD_MODULES:
            raise ConfigError(
                f"unknown pretext task {name!r} in {spec!r}", f"use names from: {', '.join(_METHOD_MODULES)}"
            )
        if name in methods:
            raise ConfigError(f"pretext task {name!r} appears twice in {spec!r}", "list each method once")
        weight_text = match.group(2)
        if weight_text is None:
            weight: float | None = 1.0
        elif weight_text == "learned":
            weight = None
        else:
            weight = float(weight_text)
            if weight <= 0:
                raise ConfigError(f"weight of {name!r} must be > 0, got {weight}", "use a positive weight")
        methods.append(name)
        weights.append(weight)
    return MethodSpec(tuple(methods), tuple(weights))


def register_all() -> None:
    """Import every method module (and multi-SSL), so all pretext configs/models are registered
    with ``AutoConfig`` / ``AutoModelForPreTraining``. ``import hfssl`` calls this."""
    for module in dict.fromkeys([*_METHOD_MODULES.values(), "hfssl.pretext.multi"]):
        importlib.import_module(module)
