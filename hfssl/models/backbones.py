"""2D backbones: any timm model, used whole.

Why the full timm model (``num_classes=0``) with ``forward_intermediates`` rather than
``features_only=True``: the backbone is then one module whose state-dict keys are exactly
timm's, so the pooled embedding is timm's own ``forward_head(pre_logits=True)`` (bit-exact with
``timm_model(x)``), ViT internals stay reachable (``patch_embed``, ``blocks``, ``cls_token`` for
MAE), and exporting to timm's format is a key-prefix strip.

Small images: timm ResNets downsample by 4 in the stem, so a 28 px image is 7 px after it and
1 px after layer4. The MedMNIST baselines use a 3x3 stride-1 first conv and no max-pool. timm's
ResNet kwargs cannot express that, so hfssl registers timm architectures
``hfssl_<resnet>_smallstem`` (e.g. ``hfssl_resnet18_smallstem``) when ``hfssl`` is imported:
timm models in every respect (``timm.create_model`` / ``features_only`` / ``local-dir:`` and
``hf-hub:`` loading work) whose stem is patched at construction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hfssl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

# timm ResNets with a plain stem (one conv1 + max-pool) that can take the small-input stem.
SMALL_STEM_BASES: tuple[str, ...] = (
    "resnet18",
    "resnet26",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wide_resnet50_2",
    "resnext50_32x4d",
    "seresnet18",
    "seresnet34",
    "seresnet50",
)
# Images at most this size get the small-input stem by default (the MedMNIST 28/64 px baselines).
SMALL_STEM_MAX_SIZE = 64


def small_stem_arch_name(base: str) -> str:
    """Name of the registered timm architecture for ``base`` with the small-input stem."""
    return f"hfssl_{base}_smallstem"


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What a backbone gives, derived without running it (see ``HfsslConfig``)."""

    feature_dim: int
    channels: tuple[int, ...]
    reductions: tuple[int, ...]
    default_indices: tuple[int, ...]
    small_input_stem: bool


# ---------------------------------------------------------------------------- small stem
def apply_small_stem(model: nn.Module) -> nn.Module:
    """Replace a timm ResNet's stem by a 3x3 stride-1 conv without max-pool, in place.

    The new conv gets timm ResNet's own init (kaiming normal, fan_out, relu); ``feature_info``
    reductions are updated (the stem no longer halves the size, the max-pool is gone).
    """
    import torch
    from torch import nn

    old = model.conv1
    if not isinstance(old, nn.Conv2d) or not hasattr(model, "maxpool"):
        raise ConfigError(
            f"{type(model).__name__} has no plain conv1 + maxpool stem to replace",
            f"use a plain-stem ResNet ({', '.join(SMALL_STEM_BASES)}) or small_input_stem=False",
        )
    conv = nn.Conv2d(old.in_channels, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    conv = conv.to(device=old.weight.device, dtype=old.weight.dtype)
    if conv.weight.device != torch.device("meta"):
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    model.conv1 = conv
    model.maxpool = nn.Identity()
    for i, info in enumerate(model.feature_info):
        # index 0 is the stem output (was /2); the rest came after stem and max-pool (/4 less)
        info["reduction"] = max(1, info["reduction"] // (2 if i == 0 else 4))
    return model


def _small_stem_entrypoint(base: str):
    """A timm entrypoint building ``base`` with the small stem (weights load after the patch)."""

    def entrypoint(pretrained: bool = False, **kwargs: Any):
        import timm
        from timm.models import build_model_with_cfg

        def build(**model_kwargs: Any):
            return apply_small_stem(timm.create_model(base, pretrained=False, **model_kwargs))

        return build_model_with_cfg(build, small_stem_arch_name(base), pretrained, **kwargs)

    entrypoint.__name__ = small_stem_arch_name(base)
    entrypoint.__qualname__ = entrypoint.__name__
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"timm {base} with a 3x3 stride-1 stem and no max-pool (hfssl, small images)."
    return entrypoint


# timm's register_model reads the pretrained cfgs from ``default_cfgs`` of the entrypoint's module.
default_cfgs: dict[str, Any] = {}


@functools.cache
def register_timm_architectures() -> tuple[str, ...]:
    """Register the ``hfssl_*_smallstem`` architectures with timm (idempotent).

    Called when ``hfssl`` (``hfssl.models``) is imported, so ``timm.create_model`` can build and
    load exported small-stem checkpoints after ``import hfssl``.
    """
    import timm
    from timm.models import generate_default_cfgs, register_model

    names = []
    cfgs = {}
    for base in SMALL_STEM_BASES:
        name = small_stem_arch_name(base)
        names.append(name)
        cfgs[name] = {
            "num_classes": 1000,
            "input_size": (3, 28, 28),
            "pool_size": None,
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            # hfssl feeds pixel values in [0, 1] unnormalised unless a checkpoint says otherwise
            "mean": (0.0, 0.0, 0.0),
            "std": (1.0, 1.0, 1.0),
            "first_conv": "conv1",
            "classifier": "fc",
            "license": "apache-2.0",
        }
    default_cfgs.update(generate_default_cfgs(cfgs))
    for base, name in zip(SMALL_STEM_BASES, names):
        if not timm.is_model(name):
            register_model(_small_stem_entrypoint(base))
    return tuple(names)


# ---------------------------------------------------------------------------- building
def _check_timm_name(backbone: str) -> None:
    import timm

    if ":" in backbone or "/" in backbone:
        raise ConfigError(
            f"backbone {backbone!r} looks like a Hub id or path; hfssl builds timm architectures by name",
            "give a timm model name such as resnet18; load hfssl checkpoints with from_pretrained",
        )
    if not timm.is_model(backbone.split(".")[0]):
        close = difflib.get_close_matches(backbone, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names"
        raise ConfigError(f"unknown backbone {backbone!r}: not a timm model nor a 3D backbone", hint)


def _resolve_small_stem(backbone: str, image_size: int, requested: bool | None) -> bool:
    eligible = backbone in SMALL_STEM_BASES
    if requested is None:
        return eligible and image_size <= SMALL_STEM_MAX_SIZE
    if requested and not eligible:
        raise ConfigError(
            f"small_input_stem=True is not available for {backbone!r}",
            f"use one of {', '.join(SMALL_STEM_BASES)}, or small_input_stem=False",
        )
    return bool(requested)


def timm_create_args(
    backbone: str, in_chans: int, image_size: int, backbone_kwargs: dict[str, Any], small_input_stem: bool
) -> tuple[str, dict[str, Any]]:
    """The ``timm.create_model`` name and kwargs for a config (``pretrained`` is always False)."""
    from timm.models import get_pretrained_cfg

    kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": in_chans}
    cfg = get_pretrained_cfg(backbone.split(".")[0])
    if cfg is not None and cfg.fixed_input_size:
        # ViT-like: build for the training size; accept other sizes (tiles) by default
        kwargs["img_size"] = image_size
        kwargs["dynamic_img_size"] = True
    kwargs.update(backbone_kwargs)
    name = small_stem_arch_name(backbone) if small_input_stem else backbone
    return name, kwargs


def build_timm_model(
    backbone: str,
    in_chans: int,
    image_size: int,
    backbone_kwargs: dict[str, Any],
    small_input_stem: bool,
    device: str | torch.device | None = None,
) -> nn.Module:
    """``timm.create_model`` for a config (``pretrained=False``); user errors become ConfigError."""
    import timm

    register_timm_architectures()
    name, kwargs = timm_create_args(backbone, in_chans, image_size, backbone_kwargs, small_input_stem)
    ctx = contextlib.nullcontext() if device is None else _device_context(device)
    with ctx:
        try:
            return timm.create_model(name, pretrained=False, **kwargs)
        except TypeError as err:
            # Fixed-size models that do not take dynamic_img_size (set by default above): drop it.
            if "dynamic_img_size" in str(err) and "dynamic_img_size" not in backbone_kwargs:
                kwargs.pop("dynamic_img_size")
                try:
                    return timm.create_model(name, pretrained=False, **kwargs)
                except TypeError as err2:
                    err = err2
            raise ConfigError(
                f"timm cannot build {name!r} with backbone_kwargs {backbone_kwargs}: {err}",
                "remove or fix the backbone_kwargs entry timm does not accept",
            ) from err


@contextlib.contextmanager
def _device_context(device: str | torch.device):
    import torch

    if torch.device(device).type == "meta":
        # transformers' guard: creation ops such as linspace(...).tolist() (drop-path schedules) stay on CPU
        from transformers.initialization import meta_device_safe_creation_ops

        with torch.device("meta"), meta_device_safe_creation_ops():
            yield
    else:
        with torch.device(device):
            yield


@functools.lru_cache(maxsize=64)
def describe_timm_backbone(
    backbone: str, in_chans: int, image_size: int, frozen_kwargs: tuple, small_input_stem: bool | None
) -> BackboneSpec:
    """Feature dim / channels / reductions of a timm backbone, from a model built on the meta device."""
    _check_timm_name(backbone)
    stem = _resolve_small_stem(backbone, image_size, small_input_stem)
    kwargs = _thaw(frozen_kwargs)
    model = build_timm_model(backbone, in_chans, image_size, kwargs, stem, device="meta")
    info = list(getattr(model, "feature_info", None) or [])
    if not info or not hasattr(model, "forward_intermediates"):
        raise ConfigError(
            f"timm model {backbone!r} has no feature_info/forward_intermediates, so no feature maps",
            "pick a timm model that supports forward_intermediates (ResNet, ConvNeXt, ViT, EfficientNet ...)",
        )
    patch_embed = getattr(model, "patch_embed", None)
    patch = getattr(patch_embed, "patch_size", None)
    if patch is not None:
        patch = patch if isinstance(patch, Sequence) else (patch, patch)
        if min(image_size // int(p) for p in patch) < 2:
            raise ConfigError(
                f"{backbone} with patch size {tuple(patch)} leaves fewer than 2x2 patches on {image_size} px images",
                f"set backbone_kwargs={{'patch_size': {max(1, image_size // 7)}}} or larger images",
            )
    channels = tuple(int(f["num_chs"]) for f in info)
    reductions = tuple(int(f["reduction"]) for f in info)
    n = len(info)
    if patch_embed is not None and len(set(reductions)) == 1 and n > 4:
        # ViT-like (all blocks at one scale): 4 evenly spaced blocks, the last one included
        default = tuple(sorted({(n * k) // 4 - 1 for k in (1, 2, 3, 4)}))
    else:
        default = tuple(range(n))
    feature_dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
    return BackboneSpec(feature_dim, channels, reductions, default, stem)


def _thaw(obj: Any) -> Any:
    """Inverse of ``configuration._freeze`` for kwargs (tuples of pairs back to dicts)."""
    if isinstance(obj, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in obj
    ):
        return {k: _thaw(v) for k, v in obj}
    return obj


# ---------------------------------------------------------------------------- forward
def timm_forward_features(
    model: nn.Module, pixel_values: torch.Tensor, indices: Sequence[int]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Pooled embedding (timm's pre-logits) and the feature maps at ``indices`` (NCHW)."""
    final, intermediates = model.forward_intermediates(pixel_values, indices=list(indices))
    pooled = model.forward_head(final, pre_logits=True)
    return pooled, list(intermediates)
