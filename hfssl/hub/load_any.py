"""``load_feature_extractor(spec)``: any checkpoint -> :class:`FeatureExtractor`.

Spec forms handled here:

* an hfssl checkpoint folder (``config.json`` with ``model_type`` ``hfssl`` or a pretext
  model's ``hfssl_<method>``: its backbone is used) + ``model.safetensors``;
* ``timm:NAME`` - a timm architecture at random init (``pretrained=False``; no download),
  optionally ``timm:NAME?in_chans=1&img_size=28``.

``random_init=True`` gives the same architecture freshly initialised - the ``scratch`` baseline.
Only safetensors are ever read; ``trust_remote_code`` is never set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch

from hfssl.errors import CheckpointError
from hfssl.hub.feature_extractor import ExtractorInfo, FeatureExtractor

WEIGHTS_NAME = "model.safetensors"
PICKLE_NAMES = ("pytorch_model.bin", "model.pt", "model.pth", "pytorch_model.bin.index.json")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_feature_extractor(
    spec: str | os.PathLike, *, random_init: bool = False, **kwargs: Any
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` for ``spec`` (see the module docstring for the forms)."""
    text = str(spec)
    if text.startswith("timm:"):
        return _from_timm_name(text[len("timm:") :], random_init=random_init)
    path = Path(text).expanduser()
    if path.is_dir():
        return _from_local_folder(path, random_init=random_init)
    raise CheckpointError(
        f"cannot resolve checkpoint spec {text!r}",
        "give an hfssl checkpoint folder (config.json + model.safetensors) or timm:NAME",
    )


# ---------------------------------------------------------------------------------------- hfssl
def read_checkpoint_config(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no config.json", "give a folder written by save_pretrained")
    try:
        return json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path} is not valid JSON ({err})", "re-save the checkpoint") from err


def _from_local_folder(folder: Path, random_init: bool) -> FeatureExtractor:
    config_dict = read_checkpoint_config(folder)
    model_type = str(config_dict.get("model_type", ""))
    if not model_type.startswith("hfssl"):
        raise CheckpointError(
            f"{folder} holds a {model_type or 'unknown'!r} model, not an hfssl checkpoint",
            "give an hfssl checkpoint folder, or a timm:/transformers spec",
        )
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = [n for n in PICKLE_NAMES if (folder / n).is_file()]
        what = f"only pickle weights ({', '.join(pickles)})" if pickles else f"no {WEIGHTS_NAME}"
        raise CheckpointError(
            f"{folder} has {what}", "hfssl loads safetensors only; re-save it with save_pretrained"
        )
    import hfssl.models  # noqa: F401  (registers Auto classes)
    from hfssl.models import HfsslConfig, HfsslModel

    if model_type == HfsslConfig.model_type:
        config = HfsslConfig.from_pretrained(folder)
        model = HfsslModel(config) if random_init else HfsslModel.from_pretrained(folder)
    else:  # a pretext model's checkpoint: take its backbone
        import hfssl.pretext

        hfssl.pretext.register_all()
        from transformers import AutoModelForPreTraining

        pretext = AutoModelForPreTraining.from_pretrained(folder, use_safetensors=True)
        backbone = getattr(pretext, "backbone", None)
        if not isinstance(backbone, HfsslModel):
            raise CheckpointError(
                f"{folder} ({model_type}) exposes no HfsslModel backbone", "export its backbone"
            )
        model = HfsslModel(backbone.config) if random_init else backbone
    content_hash = (
        _text_sha256(model.config.to_json_string() + "random-init") if random_init else file_sha256(weights)
    )
    return hfssl_extractor(model, spec=str(folder), content_hash=content_hash, random_init=random_init)


def hfssl_extractor(
    model: Any, *, spec: str, content_hash: str, random_init: bool = False
) -> FeatureExtractor:
    """Wrap a live :class:`~hfssl.models.HfsslModel`."""
    config = model.config
    normalisation = None
    if getattr(config, "image_mean", None) is not None and getattr(config, "image_std", None) is not None:
        normalisation = (list(config.image_mean), list(config.image_std))
    return FeatureExtractor(
        model,
        embed_fn=lambda m, x: m.forward_features(x)[0],
        maps_fn=lambda m, x: m.forward_features(x)[1],
        in_chans=config.in_chans,
        image_size=config.image_size,
        spatial_dims=config.spatial_dims,
        embed_dim=config.feature_dim,
        feature_channels=config.feature_channels,
        normalisation=normalisation,
        info=ExtractorInfo(
            spec=spec,
            source="hfssl",
            content_hash=content_hash,
            random_init=random_init,
            details={
                "backbone": config.backbone,
                "pretext_methods": getattr(config, "pretext_methods", None),
            },
        ),
    )


# ----------------------------------------------------------------------------------------- timm
def _from_timm_name(text: str, random_init: bool) -> FeatureExtractor:
    import timm

    name, _, query = text.partition("?")
    options: dict[str, Any] = {k: _parse_value(v) for k, v in parse_qsl(query)}
    if not timm.is_model(name):
        raise CheckpointError(f"unknown timm model {name!r}", "check the name with timm.list_models()")
    model = timm.create_model(name, pretrained=False, num_classes=0, **options)
    # timm names at random init are always "random"; the hash still separates architectures.
    content_hash = _text_sha256(f"timm:{text}:random-init")
    return timm_extractor(model, spec=f"timm:{text}", content_hash=content_hash, random_init=True)


def _parse_value(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def timm_extractor(model: Any, *, spec: str, content_hash: str, random_init: bool) -> FeatureExtractor:
    """Wrap a timm model (``num_classes=0``): pooled features + ``forward_intermediates`` maps."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    in_chans = int(getattr(model, "in_chans", None) or cfg.get("input_size", (3,))[0])
    input_size = cfg.get("input_size")
    image_size = int(input_size[-1]) if input_size else None
    mean, std = cfg.get("mean"), cfg.get("std")
    normalisation = None
    if mean is not None and std is not None:
        mean, std = list(mean), list(std)
        if len(mean) != in_chans:  # timm configs are RGB; a 1-channel model uses the mean stat
            mean, std = [sum(mean) / len(mean)] * in_chans, [sum(std) / len(std)] * in_chans
        normalisation = (mean, std)

    def maps_fn(m: Any, x: torch.Tensor) -> list[torch.Tensor]:
        return list(m.forward_intermediates(x, intermediates_only=True))

    channels = [int(info["num_chs"]) for info in getattr(model, "feature_info", [])]
    return FeatureExtractor(
        model,
        embed_fn=lambda m, x: m(x),
        maps_fn=maps_fn,
        in_chans=in_chans,
        image_size=image_size,
        spatial_dims=2,
        embed_dim=int(model.num_features),
        feature_channels=channels,
        normalisation=normalisation,
        info=ExtractorInfo(spec=spec, source="timm", content_hash=content_hash, random_init=random_init),
    )
