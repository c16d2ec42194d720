"""``load_feature_extractor(spec)``: any checkpoint -> :class:`FeatureExtractor`.

Spec forms:

* an hfssl checkpoint folder (``config.json`` with ``model_type`` ``hfssl`` or a pretext
  model's ``hfssl_<method>``: its backbone is used) + ``model.safetensors``;
* ``ORG/NAME`` (optionally ``ORG/NAME@REVISION``, or ``revision=``): a Hub repo holding an hfssl
  checkpoint, a timm export or a transformers vision model - downloaded through the normal
  Hugging Face cache (so ``HF_HUB_OFFLINE=1`` works once cached), safetensors only;
* ``zoo:NAME`` (``zoo:NAME@BUDGET``) - a model-zoo entry built here or pulled into the cache
  (``hfssl zoo``; resolved offline by :func:`hfssl.zoo.resolve_zoo_spec`);
* ``timm:NAME`` - a timm architecture at random init (``pretrained=False``; no download),
  optionally ``timm:NAME?in_chans=1&img_size=28``;
* ``hf-hub:ORG/NAME`` - timm weights on the Hub (e.g. ``hfssl export-timm`` pushed with
  ``hfssl push``, or ``hf-hub:timm/...``), safetensors only; a local ``export-timm`` folder works too;
* a transformers vision model folder / repo (``ResNetModel``, ``ConvNextModel``, ``ViTModel`` ...):
  ``AutoModel`` with ``output_hidden_states``; embedding = ``pooler_output`` (flattened) or the
  mean of the last hidden state; feature maps = the 4D hidden states (token states reshaped to
  maps for ViTs); normalisation from ``preprocessor_config.json`` when present.

Grey-scale data into an RGB model: by default the channel is repeated
(``channel_adapter="repeat"``); ``first_conv="average"`` instead collapses the model's first
convolution to one input channel with timm's ``adapt_input_conv`` (kernels summed over the RGB
channels, i.e. the response to the channel-averaged image scaled back; normalisation statistics
averaged), recorded as ``channel_adapter="first-conv-average"``.

``random_init=True`` gives the same architecture freshly initialised - the ``scratch`` baseline.
Only safetensors are ever read: a repo or folder offering only pickle weights is refused;
``trust_remote_code`` is never set.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch
from safetensors import SafetensorError

from hfssl.errors import CheckpointError, ConfigError
from hfssl.hub.feature_extractor import ExtractorInfo, FeatureExtractor
from hfssl.utils.io import file_sha256

WEIGHTS_NAME = "model.safetensors"
PICKLE_NAMES = ("pytorch_model.bin", "model.pt", "model.pth", "pytorch_model.bin.index.json")


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_feature_extractor(
    spec: str | os.PathLike,
    *,
    random_init: bool = False,
    revision: str | None = None,
    first_conv: str = "repeat",
    **kwargs: Any,
) -> FeatureExtractor:
    """A :class:`FeatureExtractor` for ``spec`` (see the module docstring for the forms).

    Args:
        spec: folder, ``ORG/NAME[@REV]``, ``timm:NAME[?k=v]`` or ``hf-hub:ORG/NAME[@REV]``.
        random_init: same architecture, fresh weights (the ``scratch`` baseline).
        revision: Hub branch, tag or commit for repo specs (also ``@REV`` in the spec).
        first_conv: ``"repeat"`` (grey input repeated to the model's channels) or ``"average"``
            (the first conv collapsed to one channel; see the module docstring).
    """
    if first_conv not in ("repeat", "average"):
        raise ConfigError(
            f"first_conv must be 'repeat' or 'average', got {first_conv!r}", "use repeat or average"
        )
    text = str(spec)
    if text.startswith("zoo:"):
        from hfssl.zoo import resolve_zoo_spec

        extractor = _from_folder(resolve_zoo_spec(text), random_init=random_init, spec=text)
    elif text.startswith("timm:"):
        extractor = _from_timm_name(text[len("timm:") :], random_init=random_init)
    elif text.startswith("hf-hub:"):
        extractor = _from_timm_hub(text[len("hf-hub:") :], random_init=random_init, revision=revision)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            extractor = _from_folder(path, random_init=random_init, spec=text)
        elif _looks_like_path(text):
            raise CheckpointError(
                f"checkpoint folder {text} does not exist",
                "give an existing folder, a Hub repo id ORG/NAME, timm:NAME or hf-hub:ORG/NAME",
            )
        elif "/" in text:
            repo_id, rev = _split_revision(text, revision)
            folder = _download(repo_id, rev)
            extractor = _from_folder(folder, random_init=random_init, spec=_spec_text(repo_id, rev))
        else:
            raise CheckpointError(
                f"cannot resolve checkpoint spec {text!r}",
                "give an hfssl checkpoint folder (config.json + model.safetensors), a Hub repo id ORG/NAME, "
                "timm:NAME or hf-hub:ORG/NAME",
            )
    if first_conv == "average":
        _collapse_first_conv(extractor)
    return extractor


def _looks_like_path(text: str) -> bool:
    """Local-path syntax (so not a Hub id): ./x, ../x, /x, ~/x, C:\\x or more than one '/'."""
    return (
        text.startswith((".", "/", "~", "\\")) or text.count("/") > 1 or "\\" in text or os.path.isfile(text)
    )


def _split_revision(text: str, revision: str | None) -> tuple[str, str | None]:
    from hfssl.hub.remote import check_repo_id

    repo_id, at, rev = text.partition("@")
    if at and revision and rev != revision:
        raise ConfigError(
            f"{text} names revision {rev} but revision={revision!r} was given", "give one revision"
        )
    return check_repo_id(repo_id), (rev or revision) if at else revision


def _spec_text(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def _download(repo_id: str, revision: str | None) -> Path:
    from hfssl.hub.remote import safe_snapshot

    return safe_snapshot(
        repo_id,
        revision=revision,
        extra=("config.json", "preprocessor_config.json", "*.safetensors.index.json"),
    )


def _from_folder(folder: Path, *, random_init: bool, spec: str) -> FeatureExtractor:
    """Dispatch a local folder on its config.json: hfssl, timm export or transformers."""
    config_dict = read_checkpoint_config(folder)
    model_type = str(config_dict.get("model_type", ""))
    if model_type.startswith("hfssl"):
        return _from_local_folder(folder, random_init=random_init, spec=spec)
    if "architecture" in config_dict and "pretrained_cfg" in config_dict:
        return _from_timm_folder(folder, random_init=random_init, spec=spec)
    if model_type:
        return _from_transformers_folder(folder, config_dict, random_init=random_init, spec=spec)
    raise CheckpointError(
        f"{folder}/config.json names no model_type (transformers/hfssl) nor architecture (timm)",
        "give a folder written by save_pretrained, hfssl export-timm or timm's save_for_hf",
    )


def _safetensors_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        pickles = [n for n in PICKLE_NAMES if (folder / n).is_file()]
        what = f"only pickle weights ({', '.join(pickles)})" if pickles else "no *.safetensors weights"
        raise CheckpointError(
            f"{folder} has {what}", "hfssl loads safetensors only; re-save it with safetensors"
        )
    return files


def _weights_hash(files: list[Path]) -> str:
    if len(files) == 1:
        return file_sha256(files[0])
    return _text_sha256("".join(f"{f.name}:{file_sha256(f)};" for f in files))


# ---------------------------------------------------------------------------------------- hfssl
def read_checkpoint_config(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no config.json", "give a folder written by save_pretrained")
    try:
        return json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path} is not valid JSON ({err})", "re-save the checkpoint") from err


def _from_local_folder(folder: Path, random_init: bool, spec: str | None = None) -> FeatureExtractor:
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

        try:
            pretext = AutoModelForPreTraining.from_pretrained(folder, use_safetensors=True)
        except (OSError, ValueError, SafetensorError) as err:  # truncated/corrupt weights, bad config
            if isinstance(err, ConfigError):
                raise
            raise CheckpointError(
                f"cannot load the {model_type} checkpoint {folder}: {' '.join(str(err).split())[:300]}",
                "re-save it with save_pretrained (config.json + model.safetensors)",
            ) from err
        backbone = getattr(pretext, "backbone", None)
        if not isinstance(backbone, HfsslModel):
            raise CheckpointError(
                f"{folder} ({model_type}) exposes no HfsslModel backbone", "export its backbone"
            )
        model = HfsslModel(backbone.config) if random_init else backbone
    content_hash = (
        _text_sha256(model.config.to_json_string() + "random-init") if random_init else file_sha256(weights)
    )
    return hfssl_extractor(
        model, spec=spec or str(folder), content_hash=content_hash, random_init=random_init
    )


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
        features_fn=lambda m, x: m.forward_features(x),
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
    built = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if built:  # a ViT built at another size (img_size=28) than its default config says
        image_size = int(built[-1]) if isinstance(built, (tuple, list)) else int(built)
    mean, std = cfg.get("mean"), cfg.get("std")
    normalisation = None
    if mean is not None and std is not None:
        mean, std = list(mean), list(std)
        if len(mean) != in_chans:  # timm configs are RGB; a 1-channel model uses the mean stat
            mean, std = [sum(mean) / len(mean)] * in_chans, [sum(std) / len(std)] * in_chans
        normalisation = (mean, std)

    def maps_fn(m: Any, x: torch.Tensor) -> list[torch.Tensor]:
        return list(m.forward_intermediates(x, intermediates_only=True))

    def features_fn(m: Any, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # one pass: the final features give timm's pooled pre-logits, as ``m(x)`` does (num_classes=0)
        final, intermediates = m.forward_intermediates(x)
        return m.forward_head(final, pre_logits=True), list(intermediates)

    channels = [int(info["num_chs"]) for info in getattr(model, "feature_info", [])]
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    details = {"patch_size": int(patch[-1]) if isinstance(patch, (tuple, list)) else patch} if patch else {}
    return FeatureExtractor(
        model,
        embed_fn=lambda m, x: m(x),
        maps_fn=maps_fn,
        features_fn=features_fn if hasattr(model, "forward_intermediates") else None,
        in_chans=in_chans,
        image_size=image_size,
        spatial_dims=2,
        embed_dim=int(model.num_features),
        feature_channels=channels,
        normalisation=normalisation,
        info=ExtractorInfo(
            spec=spec, source="timm", content_hash=content_hash, random_init=random_init, details=details
        ),
        interpolation=str(cfg.get("interpolation") or "bilinear"),
    )


def _from_timm_hub(text: str, *, random_init: bool, revision: str | None) -> FeatureExtractor:
    """``hf-hub:ORG/NAME[@REV]``: timm weights on the Hub, safetensors only."""
    repo_id, rev = _split_revision(text, revision)
    folder = _download(repo_id, rev)
    config = read_checkpoint_config(folder)
    if "architecture" not in config:
        raise CheckpointError(
            f"{repo_id} is not a timm checkpoint (its config.json has no 'architecture')",
            f"load it as {repo_id} (hfssl/transformers) instead of hf-hub:{repo_id}",
        )
    return _from_timm_folder(folder, random_init=random_init, spec=f"hf-hub:{_spec_text(repo_id, rev)}")


def _from_timm_folder(folder: Path, *, random_init: bool, spec: str) -> FeatureExtractor:
    """A timm ``save_for_hf`` / ``hfssl export-timm`` folder, through timm's own ``local-dir:`` loader."""
    import timm

    import hfssl.models  # noqa: F401  (registers hfssl's small-stem ResNets with timm)

    weights = folder / WEIGHTS_NAME
    if not random_init and not weights.is_file():
        _safetensors_files(folder)  # raises the pickle / missing-weights error
    try:
        # timm reads config.json (architecture, model_args, pretrained_cfg) and model.safetensors
        model = timm.create_model(f"local-dir:{folder}", pretrained=not random_init, num_classes=0)
    except (RuntimeError, ValueError, KeyError, OSError, SafetensorError) as err:
        raise CheckpointError(
            f"timm cannot build {spec}: {' '.join(str(err).split())[:300]}",
            "check that the timm version knows the architecture (import hfssl first for hfssl_* ones)",
        ) from err
    content_hash = (
        _text_sha256(json.dumps(read_checkpoint_config(folder), sort_keys=True) + "random-init")
        if random_init
        else file_sha256(weights)
    )
    return timm_extractor(model, spec=spec, content_hash=content_hash, random_init=random_init)


# ---------------------------------------------------------------------------------- transformers
def _from_transformers_folder(
    folder: Path, config_dict: dict[str, Any], *, random_init: bool, spec: str
) -> FeatureExtractor:
    """A transformers vision model: ``AutoModel`` (no remote code) with hidden states as feature maps."""
    from transformers import AutoConfig, AutoModel

    if config_dict.get("auto_map"):
        raise CheckpointError(
            f"{spec} needs custom code from its repo (auto_map in config.json); hfssl never runs remote code",
            "use a model whose architecture ships with transformers",
        )
    try:
        config = AutoConfig.from_pretrained(folder)
        if random_init:
            model = AutoModel.from_config(config)
        else:
            files = _safetensors_files(folder)
            model = AutoModel.from_pretrained(folder, use_safetensors=True)
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(
            f"transformers cannot load {spec}: {' '.join(str(err).split())[:300]}",
            "give a transformers vision model folder/repo (config.json + model.safetensors)",
        ) from err
    if (
        getattr(model, "vision_model", None) is not None
        and getattr(config, "vision_config", None) is not None
    ):
        # a dual-encoder (CLIP, SigLIP ...): its vision tower is the image backbone
        model, config = model.vision_model, config.vision_config
    in_chans = int(getattr(config, "num_channels", 3))
    image_size = _transformers_image_size(config, folder)
    normalisation = _processor_normalisation(folder, in_chans)
    model.eval()
    forward = _hf_forward_fn(model)
    probe_size = image_size or 64
    with torch.no_grad():
        out = forward(model, torch.zeros(1, in_chans, probe_size, probe_size), True)
    embed = _hf_embedding(out)
    prefix = _hf_prefix_tokens(config)
    maps = _hf_feature_maps(out, prefix)
    if not maps:
        raise CheckpointError(
            f"{spec} returns no hidden states to use as feature maps", "use a vision backbone"
        )
    content_hash = (
        _text_sha256(config.to_json_string() + "random-init") if random_init else _weights_hash(files)
    )
    return FeatureExtractor(
        model,
        embed_fn=lambda m, x: _hf_embedding(forward(m, x, False)),
        maps_fn=lambda m, x: _hf_feature_maps(forward(m, x, True), prefix),
        features_fn=lambda m, x: _hf_features(forward(m, x, True), prefix),
        in_chans=in_chans,
        image_size=image_size,
        spatial_dims=2,
        embed_dim=int(embed.shape[-1]),
        feature_channels=[int(t.shape[1]) for t in maps],
        normalisation=normalisation,
        info=ExtractorInfo(
            spec=spec,
            source="transformers",
            content_hash=content_hash,
            random_init=random_init,
            details={
                "model_type": config.model_type,
                "architecture": type(model).__name__,
                **({"patch_size": _patch_size(config)} if _patch_size(config) else {}),
            },
        ),
        interpolation=_processor_interpolation(folder),
    )


def _hf_forward_fn(model: Any) -> Any:
    """``(module, x, hidden_states) -> output`` for a transformers vision model, with what its
    forward needs to act as a plain encoder: ``interpolate_pos_encoding=True`` where it takes it
    (ViT, CLIP, ViT-MAE: inputs at another size than the position table keep working), and for
    ViT-MAE no masking - ``mask_ratio`` 0 and ordered ``noise``, so tokens stay in image order."""
    import inspect

    try:
        params = set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        params = set()
    extra: dict[str, Any] = {}
    if "interpolate_pos_encoding" in params:
        extra["interpolate_pos_encoding"] = True
    mae = "noise" in params and hasattr(getattr(model, "config", None), "mask_ratio")
    if mae:
        model.config.mask_ratio = 0.0

    def forward(m: Any, x: torch.Tensor, hidden: bool) -> Any:
        kwargs = dict(extra)
        if mae:
            patch = int(m.config.patch_size)
            n = (x.shape[-2] // patch) * (x.shape[-1] // patch)
            kwargs["noise"] = torch.arange(n, device=x.device, dtype=torch.float32).expand(x.shape[0], n)
        return m(pixel_values=x, output_hidden_states=hidden, **kwargs)

    return forward


def _patch_size(config: Any) -> int | None:
    patch = getattr(config, "patch_size", None)
    if isinstance(patch, (list, tuple)):
        patch = patch[-1]
    return int(patch) if isinstance(patch, int) else None


def _processor_interpolation(folder: Path) -> str:
    """The image processor's resampling (PIL codes: 2 bilinear, 3 bicubic); bilinear without one."""
    resample = _read_processor(folder).get("resample")
    return {3: "bicubic", "bicubic": "bicubic"}.get(resample, "bilinear")


def _hf_embedding(out: Any) -> torch.Tensor:
    pooled = getattr(out, "pooler_output", None)
    if pooled is not None:
        return pooled.flatten(1)
    last = out.last_hidden_state
    # CNN maps (B, C, H, W): average over space; token states (B, N, D): average over tokens
    return last.mean(dim=(2, 3)) if last.ndim == 4 else last.mean(dim=1)


def _hf_features(out: Any, prefix: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    return _hf_embedding(out), _hf_feature_maps(out, prefix)


def _hf_prefix_tokens(config: Any) -> int | None:
    """Leading non-patch tokens where the config says (class token + ``num_register_tokens``:
    DINOv2 with registers), else ``None`` (found from the token count)."""
    registers = getattr(config, "num_register_tokens", None)
    return 1 + int(registers) if isinstance(registers, int) else None


def _hf_feature_maps(out: Any, prefix: int | None = None, max_token_maps: int = 4) -> list[torch.Tensor]:
    states = [h for h in (out.hidden_states or ()) if h is not None]
    maps = [h for h in states if h.ndim == 4]
    if maps:
        return maps
    # ViT-like token states: 4 evenly spaced layers (after the embeddings), reshaped to maps
    layers = states[1:] or states
    if not layers:
        return []
    step = max(1, len(layers) // max_token_maps)
    chosen = layers[step - 1 :: step][-max_token_maps:]
    return [m for m in (_tokens_to_map(h, prefix) for h in chosen) if m is not None]


def _tokens_to_map(tokens: torch.Tensor, prefix: int | None = None) -> torch.Tensor | None:
    """(B, N, D) -> (B, D, s, s), dropping the ``prefix`` leading class/register tokens, or where
    that is unknown the fewest that leave a square (ambiguous with registers: 1 + 4 tokens before a
    2x2 grid also leave a 3x3 square after 0, so the config's count wins when it has one)."""
    n = tokens.shape[1]
    for extra in range(0, min(n, 9)) if prefix is None else (prefix,):
        side = int(round((n - extra) ** 0.5))
        if side * side == n - extra and side > 0:
            grid = tokens[:, extra:, :]
            return grid.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, side)
    return None


def _transformers_image_size(config: Any, folder: Path) -> int | None:
    size = getattr(config, "image_size", None)
    if isinstance(size, (list, tuple)):
        size = size[-1]
    if isinstance(size, int):
        return size
    processor = _read_processor(folder)
    for key in ("crop_size", "size"):
        value = processor.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, dict):
            for sub in ("height", "shortest_edge"):
                if isinstance(value.get(sub), int):
                    return int(value[sub])
    return None


def _read_processor(folder: Path) -> dict[str, Any]:
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path} is not valid JSON ({err})", "fix or delete preprocessor_config.json"
        ) from err
    return data if isinstance(data, dict) else {}


def _processor_normalisation(folder: Path, in_chans: int) -> tuple[list[float], list[float]] | None:
    """(mean, std) the image processor would apply after rescaling to [0, 1]; ``None`` without one."""
    processor = _read_processor(folder)
    if not processor or processor.get("do_normalize") is False:
        return None
    mean, std = processor.get("image_mean"), processor.get("image_std")
    if mean is None or std is None:
        return None
    mean = [float(mean)] * in_chans if isinstance(mean, (int, float)) else [float(v) for v in mean]
    std = [float(std)] * in_chans if isinstance(std, (int, float)) else [float(v) for v in std]
    return mean, std


# ---------------------------------------------------------------------------------- channels
def _collapse_first_conv(extractor: FeatureExtractor) -> None:
    """Make an RGB extractor take one channel: first conv collapsed with timm's ``adapt_input_conv``."""
    from timm.models import adapt_input_conv

    if extractor.in_chans == 1:
        return  # already grey: nothing to adapt
    conv = next(
        (
            m
            for m in extractor.backbone.modules()
            if isinstance(m, torch.nn.Conv2d) and m.in_channels == extractor.in_chans
        ),
        None,
    )
    if conv is None or conv.groups != 1:
        raise CheckpointError(
            f"{extractor.info.spec} has no plain first convolution taking {extractor.in_chans} channels",
            "use first_conv='repeat' (the default) for this model",
        )
    with torch.no_grad():
        weight = adapt_input_conv(1, conv.weight.detach().clone())
    conv.weight = torch.nn.Parameter(weight)
    conv.in_channels = 1
    if hasattr(extractor.backbone, "config") and hasattr(extractor.backbone.config, "num_channels"):
        extractor.backbone.config.num_channels = 1  # transformers models check the input channels
    for module in extractor.backbone.modules():  # transformers' embedders keep their own copy
        if (
            hasattr(module, "num_channels")
            and isinstance(module.num_channels, int)
            and module.num_channels == extractor.in_chans
        ):
            module.num_channels = 1
    if extractor._mean is not None:
        extractor._mean = extractor._mean.mean(dim=1, keepdim=True)
        extractor._std = extractor._std.mean(dim=1, keepdim=True)
        extractor.normalisation = (
            [float(extractor._mean.flatten()[0])],
            [float(extractor._std.flatten()[0])],
        )
    extractor.in_chans = 1
    extractor.channel_adapter = "first-conv-average"
    extractor.info.details["first_conv"] = (
        "collapsed to 1 channel (timm adapt_input_conv: RGB kernels summed)"
    )
