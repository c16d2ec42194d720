"""Registry of pretext tasks: the one place that says which methods exist and what they are.

``METHODS`` holds one :class:`MethodInfo` per method (its module, family, the dimensions it
supports, whether it trains a U-Net decoder or needs a ViT, its aliases, whether the paper
benchmarks it). Everything else - model cards, the studies, the trainer's help, the factory -
asks this module (``get_method_info``, ``list_pretext_tasks``, ``method_family``) instead of
keeping a list of its own. Looking metadata up imports neither torch nor any method module.

Each method lives in its own module and registers its model class with :func:`register_pretext`
when imported; asking for one method's class imports only that method's file.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hfssl.errors import ConfigError

if TYPE_CHECKING:
    from hfssl.pretext.base import PretextModel

# Families: predictive (pretext labels), generative (restoration, masked image modelling),
# contrastive (positive pairs against negatives, or BYOL's momentum regression), and two of
# their own: redundancy-reduction (Barlow Twins, VICReg: no negatives and no momentum target,
# collapse is prevented by decorrelating / variance terms on the batch's feature statistics) and
# self-distillation (DINO, distillation from a frozen teacher: the student matches a teacher's
# output distribution / embedding). Folding them into "contrastive" would make the studies'
# "contrastive" pick and the cards' tags claim negatives that these methods do not use.
FAMILIES = ("predictive", "generative", "contrastive", "redundancy-reduction", "self-distillation")


@dataclass(frozen=True)
class MethodInfo:
    """What hfssl knows about one pretext method, without importing it."""

    name: str
    module: str
    family: str  # one of FAMILIES (MAE, masked image modelling: generative)
    spatial_dims: tuple[int, ...] = (2, 3)
    unet_decoder: bool = False  # trains a U-Net decoder (``decoder_channels`` / ``skip_connections``)
    needs_vit: bool = False  # the backbone must be a timm VisionTransformer
    aliases: tuple[str, ...] = ()
    in_paper: bool = True  # one of the paper's ten methods (Zhang et al. 2023)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, got {self.family!r}")
        if not self.spatial_dims or not set(self.spatial_dims) <= {2, 3}:
            raise ValueError(f"{self.name}: spatial_dims must be some of (2, 3), got {self.spatial_dims}")


def _methods(*infos: MethodInfo) -> dict[str, MethodInfo]:
    return {info.name: info for info in infos}


# One line per method (the paper's ten methods, then MoCo v2, MAE and the newer ones); add one
# for a new method.
METHODS: dict[str, MethodInfo] = _methods(
    MethodInfo("rpl", "hfssl.pretext.rpl", "predictive"),
    MethodInfo("rot", "hfssl.pretext.rot", "predictive"),
    MethodInfo("jigsaw", "hfssl.pretext.jigsaw", "predictive"),
    MethodInfo("rkb", "hfssl.pretext.rkb", "predictive"),
    MethodInfo("rkb_plus", "hfssl.pretext.rkb", "predictive", aliases=("rkb+",)),
    MethodInfo("ae", "hfssl.pretext.ae", "generative", unet_decoder=True),
    MethodInfo("mg", "hfssl.pretext.mg", "generative", unet_decoder=True),
    MethodInfo("simclr", "hfssl.pretext.simclr", "contrastive"),
    MethodInfo("byol", "hfssl.pretext.byol", "contrastive"),
    MethodInfo("pcrl", "hfssl.pretext.pcrl", "contrastive", unet_decoder=True),
    MethodInfo("mocov2", "hfssl.pretext.mocov2", "contrastive", in_paper=False),
    MethodInfo("mae", "hfssl.pretext.mae", "generative", spatial_dims=(2,), needs_vit=True, in_paper=False),
    MethodInfo("vicreg", "hfssl.pretext.vicreg", "redundancy-reduction", in_paper=False),
    MethodInfo("dino", "hfssl.pretext.dino", "self-distillation", in_paper=False),
    # distillation from a frozen 2D teacher: 3D students learn from its slices (hfssl/pretext/distill.py)
    MethodInfo("distill", "hfssl.pretext.distill", "self-distillation", in_paper=False),
    MethodInfo(
        "barlow_twins",
        "hfssl.pretext.barlow_twins",
        "redundancy-reduction",
        aliases=("barlow",),
        in_paper=False,
    ),
)

# the combination of several methods (``rot+simclr``) is a model of its own, not a method
MULTI = "multi"
_MULTI_MODULE = "hfssl.pretext.multi"

_ALIASES: dict[str, str] = {alias: info.name for info in METHODS.values() for alias in info.aliases}


def canonical_name(name: str) -> str:
    """``"RKB+"`` / ``"rkb-plus"`` -> ``"rkb_plus"``; unknown names come back normalised, unchanged."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key).replace("-", "_")
    return _ALIASES.get(key, key)


def get_method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of one method (aliases such as ``rkb+`` accepted)."""
    key = canonical_name(name)
    if key not in METHODS:
        raise ConfigError(
            f"unknown pretext task {name!r}",
            f"use one of {', '.join(METHODS)}, or a combination such as rot+simclr",
        )
    return METHODS[key]


def list_pretext_tasks(
    family: str | None = None, spatial_dims: int | None = None, *, in_paper: bool | None = None
) -> list[str]:
    """Names of the single pretext tasks (combinations are written ``rot+simclr``), optionally only
    those of one ``family``, those that support ``spatial_dims``, or those the paper benchmarks."""
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown method family {family!r}", f"use one of {', '.join(FAMILIES)}")
    return [
        info.name
        for info in METHODS.values()
        if (family is None or info.family == family)
        and (spatial_dims is None or spatial_dims in info.spatial_dims)
        and (in_paper is None or info.in_paper == in_paper)
    ]


def method_family(spec: str) -> str:
    """The family of a method spec: predictive / generative / contrastive, ``multi`` for a
    combination (``"rot:0.5+simclr"``), ``unknown`` for a name hfssl does not know."""
    text = spec.strip().lower()
    if text in _ALIASES:
        return METHODS[_ALIASES[text]].family
    if "+" in text or text == MULTI:
        return MULTI
    info = METHODS.get(canonical_name(text.split(":")[0]))
    return info.family if info is not None else "unknown"


_REGISTRY: dict[str, type[PretextModel]] = {}


def register_pretext(name: str):
    """Class decorator: make a ``PretextModel`` subclass available as ``name``."""

    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(
                f"pretext task {name!r} registered twice ({_REGISTRY[name].__name__}, {cls.__name__})"
            )
        _check_against_registry(name, cls)
        _REGISTRY[name] = cls
        cls.method_name = name
        _register_auto(cls)
        return cls

    return wrap


def _check_against_registry(name: str, cls) -> None:
    """A model class takes its family from ``METHODS`` (one source); its ViT need must agree."""
    if name == MULTI:
        return
    if name not in METHODS:
        raise ValueError(f"pretext task {name!r} has no line in hfssl.pretext.registry.METHODS; add one")
    info = METHODS[name]
    cls.family = info.family
    if (cls.config_class.backbone_family == "vit") != info.needs_vit:
        raise ValueError(f"{name}: needs_vit={info.needs_vit} in METHODS, but its config says otherwise")


def _register_auto(cls) -> None:
    """Make ``AutoConfig`` / ``AutoModelForPreTraining`` load this method's checkpoints (no remote code)."""
    from transformers import AutoConfig, AutoModelForPreTraining

    from hfssl.pretext.base import convert_strict_errors

    config_class = convert_strict_errors(cls.config_class)
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModelForPreTraining.register(config_class, cls, exist_ok=True)


def get_pretext_class(name: str) -> type[PretextModel]:
    """The model class of one pretext task, importing its module on first use."""
    info = get_method_info(name)
    if info.name not in _REGISTRY:
        importlib.import_module(info.module)
    return _REGISTRY[info.name]


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
    # an alias ending in '+' ("rkb+") counts only where the '+' cannot be a separator
    # ("rkb+simclr" is two methods)
    text = spec.strip().lower()
    for alias, name in _ALIASES.items():
        text = re.sub(rf"(?<![a-z0-9_]){re.escape(alias)}(?=$|\+|:)", name, text)
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
        name = canonical_name(match.group(1))
        if name not in METHODS:
            raise ConfigError(
                f"unknown pretext task {name!r} in {spec!r}", f"use names from: {', '.join(METHODS)}"
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
    for module in dict.fromkeys([*(info.module for info in METHODS.values()), _MULTI_MODULE]):
        importlib.import_module(module)
