"""Export an hfssl 2D backbone to timm's own checkpoint format.

The folder holds ``model.safetensors`` (timm's state-dict keys) and ``config.json`` with
``architecture``, ``num_classes: 0``, ``model_args`` (``in_chans``, ``img_size``,
``patch_size``, ``dynamic_img_size`` ...) and ``pretrained_cfg`` (input size, mean/std), written
by timm's own ``save_for_hf``. Load it with::

    timm.create_model("local-dir:OUT_DIR", pretrained=True)      # local folder
    timm.create_model("hf-hub:ORG/NAME", pretrained=True)        # after uploading the folder

Standard-stem backbones load in plain timm. Small-stem ResNets are exported as the timm
architecture ``hfssl_<resnet>_smallstem``, which ``import hfssl`` registers with timm: import
hfssl before ``timm.create_model`` for those. 3D backbones are not timm models and are refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hfssl.errors import CheckpointError, ConfigError
from hfssl.utils.logging import get_logger

logger = get_logger(__name__)

# pretrained_cfg entries that describe timm's ImageNet weights, not the exported ones
_FOREIGN_KEYS = ("tag", "origin_url", "paper_ids", "paper_name", "notes", "license", "hf_hub_id", "url")


def timm_architecture(config: Any) -> str:
    """The timm architecture name an exported backbone loads as."""
    from hfssl.models.backbones import small_stem_arch_name

    if config.spatial_dims != 2:
        raise ConfigError(
            f"{config.backbone} is a 3D backbone; timm has no 3D models to export to",
            "use the hfssl checkpoint itself (AutoModel.from_pretrained after import hfssl)",
        )
    return small_stem_arch_name(config.backbone) if config.small_input_stem else config.backbone.split(".")[0]


def export_timm(
    checkpoint: str | os.PathLike | Any, output_dir: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write ``checkpoint``'s backbone (folder / Hub id / live hfssl model) to ``output_dir`` in timm's format.

    The folder is written to a temporary sibling and renamed, so ``output_dir`` is either
    complete or untouched. Returns ``output_dir``.
    """
    from timm.models import save_for_hf

    from hfssl.models.modeling import HfsslModel, HfsslPreTrainedModel

    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise CheckpointError(f"{out} exists and is not empty", "choose a new folder or pass --overwrite")
    if isinstance(checkpoint, HfsslPreTrainedModel):
        model = checkpoint if isinstance(checkpoint, HfsslModel) else checkpoint.hfssl
        source = type(checkpoint).__name__
    else:
        source = str(checkpoint)
        _refuse_3d_early(source)
        model = HfsslModel.from_pretrained(source)
    config = model.config
    arch = timm_architecture(config)
    timm_model = model.backbone
    if timm_model.pretrained_cfg.get("architecture") != arch:
        raise CheckpointError(
            f"backbone reports timm architecture {timm_model.pretrained_cfg.get('architecture')!r}, expected {arch!r}",
            "rebuild the model from its config before exporting",
        )
    channels = int(config.in_chans)
    mean = list(config.image_mean) if config.image_mean is not None else [0.0] * channels
    std = list(config.image_std) if config.image_std is not None else [1.0] * channels
    data_config = {
        "input_size": (channels, int(config.image_size), int(config.image_size)),
        "mean": tuple(mean),
        "std": tuple(std),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
    }
    # root-level extra keys are kept by timm's writer and ignored by its reader
    model_config = {
        "pretrained_cfg": {"architecture": arch},
        "hfssl": {"backbone": config.backbone, "hfssl_version": config.hfssl_version},
    }
    from hfssl.utils.io import ensure_dir, is_write_error, output_error

    ensure_dir(out.parent, "folder")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise output_error(out, exc) from exc
    try:
        was_training = timm_model.training
        timm_model.eval()
        save_for_hf(
            timm_model, str(tmp), model_config=model_config, safe_serialization=True, data_config=data_config
        )
        timm_model.train(was_training)
        _drop_foreign_provenance(tmp / "config.json")
        old = None
        if out.exists():  # move the old folder aside first: out is never half-written
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_write_error(exc):  # full disk / read-only: one line, OUT_DIR untouched
            raise output_error(out, exc if isinstance(exc, OSError) else OSError(str(exc))) from exc
        raise
    logger.info(f"exported {source} ({config.backbone}) to timm architecture {arch} in {out}")
    return out


def _drop_foreign_provenance(config_path: Path) -> None:
    """Remove the ImageNet weights' tag/paper/licence that timm copies from the architecture's default cfg."""
    cfg = json.loads(config_path.read_text(encoding="utf-8"))
    for key in _FOREIGN_KEYS:
        cfg["pretrained_cfg"].pop(key, None)
    config_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def _refuse_3d_early(source: str) -> None:
    """Refuse 3D checkpoints from their config alone, before loading any weights."""
    from hfssl.models.configuration import HfsslConfig

    try:
        config_dict, _ = HfsslConfig.get_config_dict(source)
    except OSError as err:
        raise CheckpointError(
            f"no hfssl checkpoint at {source}: {err}", "give a folder written by save_pretrained"
        ) from err
    if config_dict.get("model_type") != HfsslConfig.model_type:
        raise CheckpointError(
            f"{source} holds a {config_dict.get('model_type')!r} model, not an hfssl one",
            "export-timm reads hfssl checkpoints (config.json with model_type 'hfssl')",
        )
    if config_dict.get("spatial_dims") == 3:
        timm_architecture(HfsslConfig.from_dict(config_dict))
