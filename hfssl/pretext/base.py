"""The pretext contract: one small base class every method builds on.

A pretext model

* takes ``pixel_values`` ``(B, C, H, W)`` or ``(B, C, D, H, W)``, float in [0, 1];
* makes its own views / targets on the batch (reproducibly when given a ``generator``);
* returns a :class:`PretextOutput` with ``loss`` plus named outputs for monitoring
  (``logits``, ``labels``, ``embeddings``, ``reconstruction``, ``target``) and a ``metrics``
  dict of scalar tensors (accuracy, reconstruction MSE, positive / negative pair similarity);
* holds its backbone as ``self.backbone``, an :class:`hfssl.HfsslModel`, so the trainer can
  save it without knowing the method (:meth:`PretextModel.export_backbone`).

Each method is a config class + a model class (the transformers convention):
``RotConfig(PretextConfig)`` with ``model_type = "hfssl_rot"`` and
``RotForPretraining(PretextModel)``, decorated with ``@register_pretext("rot")``. The
backbone's config is stored inside the pretext config (``backbone_config``, the
``HfsslConfig`` as a dict), so ``save_pretrained`` / ``from_pretrained`` round-trip the whole
pretext model, and ``AutoModelForPreTraining.from_pretrained`` finds it after
``import hfssl``.

No ``from __future__ import annotations`` in config modules: huggingface_hub's ``@strict``
validates field types only when the annotations are real types.
"""

import copy
import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from hfssl.errors import ConfigError
from hfssl.models import HfsslConfig, HfsslModel
from hfssl.models.layers import init_module_weights


@strict
class PretextConfig(PreTrainedConfig):
    r"""Base configuration of a pretext model.

    Args:
        backbone_config (`dict` or `HfsslConfig`, *optional*): the backbone's configuration
            (``HfsslConfig`` or its ``to_dict()``); defaults to ``HfsslConfig()`` (ResNet-18,
            2D, 1 channel, 28 px).
        loss_weight (`float`, defaults to 1.0): weight of this task's loss (used by multi-SSL).
    """

    model_type = "hfssl_pretext"
    # which spatial dims the method supports; methods override
    supported_dims: ClassVar[tuple[int, ...]] = (2, 3)
    # backbones the method needs ("any", "cnn" or "vit")
    backbone_family: ClassVar[str] = "any"

    backbone_config: dict[str, Any] | PreTrainedConfig | None = None
    loss_weight: float = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        if isinstance(self.backbone_config, PreTrainedConfig):
            object.__setattr__(self, "backbone_config", self.backbone_config.to_dict())
        if self.backbone_config is None:
            object.__setattr__(self, "backbone_config", HfsslConfig().to_dict())
        backbone = self.get_backbone_config()  # validates
        if backbone.spatial_dims not in self.supported_dims:
            raise ConfigError(
                f"pretext task {self.model_type.removeprefix('hfssl_')} does not support {backbone.spatial_dims}D data",
                f"use it on {' or '.join(f'{d}D' for d in self.supported_dims)} data",
            )
        is_vit = backbone.backbone.startswith(("vit", "deit", "eva", "beit"))
        if self.backbone_family == "vit" and not is_vit:
            raise ConfigError(
                f"pretext task {self.model_type.removeprefix('hfssl_')} needs a ViT backbone, got {backbone.backbone}",
                "use e.g. --backbone vit_tiny_patch16_224 with backbone_kwargs patch_size=4",
            )
        if self.loss_weight <= 0:
            raise ConfigError(f"loss_weight must be > 0, got {self.loss_weight}", "use a positive weight")
        super().__post_init__(**kwargs)

    def get_backbone_config(self) -> HfsslConfig:
        """The backbone's :class:`HfsslConfig` (a fresh object each call)."""
        data = dict(self.backbone_config or {})
        data.pop("model_type", None)
        return HfsslConfig.from_dict(data)

    @property
    def spatial_dims(self) -> int:
        return int(self.backbone_config["spatial_dims"])

    @property
    def in_chans(self) -> int:
        return int(self.backbone_config["in_chans"])

    @property
    def image_size(self) -> int:
        return int(self.backbone_config["image_size"])


def _float_fields(config_class: type) -> set[str]:
    """The fields of ``config_class`` typed ``float`` or ``float | None`` (not ``int | float``)."""
    import dataclasses
    import types
    import typing

    out = set()
    for field in dataclasses.fields(config_class):
        hint = field.type
        if isinstance(hint, str):  # postponed annotation: its text
            args = tuple(a.strip() for a in hint.removeprefix("Optional[").rstrip("]").split("|"))
            is_float = "float" in args and "int" not in args
        else:
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            args = typing.get_args(hint) if union else (hint,)
            is_float = float in args and int not in args
        if is_float:
            out.add(field.name)
    return out


def convert_strict_errors(config_class: type[PretextConfig]) -> type[PretextConfig]:
    """Make a (strict) pretext config class raise :class:`ConfigError` for values of the wrong type.

    Called by ``register_pretext`` on every method's config class, so a bad value from a recipe or
    the command line becomes one clear line instead of a validation traceback. An int given for a
    float field is taken as that float.
    """
    from huggingface_hub.errors import (
        StrictDataclassClassValidationError,
        StrictDataclassFieldValidationError,
    )

    init = config_class.__dict__.get("__init__")
    if init is None or getattr(init, "_hfssl_wrapped", False):
        return config_class

    float_fields: set[str] | None = None

    @functools.wraps(init)
    def __init__(self: PretextConfig, *args: Any, **kwargs: Any) -> None:
        nonlocal float_fields
        if float_fields is None:
            float_fields = _float_fields(config_class)
        # JSON and YAML write 0.0 as 0 (``--method-kwargs '{"rot90_prob": 0}'``): an int is exactly
        # a float there, so it is taken as one rather than refused by the strict type check
        kwargs = {k: float(v) if k in float_fields and type(v) is int else v for k, v in kwargs.items()}
        try:
            init(self, *args, **kwargs)
        except (StrictDataclassFieldValidationError, StrictDataclassClassValidationError) as err:
            raise ConfigError(
                f"invalid {type(self).__name__} value: {' '.join(str(err).split())[:300]}",
                f"see the {type(self).__name__} docstring for the expected types",
            ) from err

    __init__._hfssl_wrapped = True  # type: ignore[attr-defined]
    config_class.__init__ = __init__  # type: ignore[method-assign]
    return config_class


@dataclass
class PretextOutput(ModelOutput):
    """Output of every pretext model.

    Args:
        loss: the scalar training loss.
        logits: predictions of classification-style tasks (ROT, RPL, Jigsaw, RKB).
        labels: the self-generated targets of ``logits``.
        embeddings: pooled backbone embeddings of the (first) view, ``(B, D)``.
        reconstruction / target: output and target of restoration tasks (AE, MG, PCRL, MAE).
        metrics: scalar tensors for monitoring (``accuracy``, ``mse``, ``pos_sim``, ``neg_sim`` ...),
            detached.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None
    embeddings: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    target: torch.FloatTensor | None = None
    metrics: dict[str, torch.Tensor] | None = None


class PretextModel(PreTrainedModel):
    """Base class of the pretext models: backbone + method heads + ``forward(pixel_values)``.

    Subclasses set ``config_class``, build their heads in ``__init__`` after calling
    ``super().__init__(config)`` and end with ``self.post_init()``; they implement
    :meth:`forward`. ``family`` (predictive / generative / contrastive / multi) is set when the
    class is registered, from :data:`hfssl.pretext.registry.METHODS`.
    """

    config: PretextConfig
    config_class = PretextConfig
    base_model_prefix = "backbone"
    main_input_name = "pixel_values"
    input_modalities = "image"
    method_name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    # which encoder ``export_backbone(which="auto")`` gives: "online", or "target" (DINO's teacher)
    default_export: ClassVar[str] = "online"

    def __init__(self, config: PretextConfig) -> None:
        super().__init__(config)
        self.backbone = HfsslModel(config.get_backbone_config())

    def _init_weights(self, module: nn.Module) -> None:
        # The backbone keeps its own (timm / hfssl) init; heads use hfssl's default init.
        if any(module is m for m in self.backbone.modules()):
            return
        init_module_weights(module)

    # ------------------------------------------------------------------ helpers for methods
    @property
    def spatial_dims(self) -> int:
        return self.config.spatial_dims

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled backbone embedding ``(B, D)``."""
        pooled, _ = self.backbone.forward_features(pixel_values)
        return pooled

    def check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        want = self.spatial_dims + 2
        if pixel_values.ndim != want:
            from hfssl.errors import DataError

            layout = "(B, C, H, W)" if want == 4 else "(B, C, D, H, W)"
            raise DataError(
                f"{type(self).__name__} got pixel_values of shape {tuple(pixel_values.shape)}, expected {layout}",
                "feed batches of the dimensionality the backbone was configured for",
            )

    def backbone_modules(self) -> list[HfsslModel]:
        """Every ``HfsslModel`` in this pretext model (BYOL/MoCo also hold a momentum copy)."""
        return [m for m in self.modules() if isinstance(m, HfsslModel)]

    # ------------------------------------------------------------------ export
    def export_backbone(self, which: str = "auto", provenance: dict[str, Any] | None = None) -> HfsslModel:
        """A standalone copy of the backbone with the pretext method recorded in its config.

        ``which``: ``"online"``, or for momentum methods (BYOL, MoCo, PCRL, DINO) ``"target"``;
        ``"auto"`` (default) is the method's ``default_export``: the online encoder, except for
        DINO, whose teacher is the better encoder.
        ``provenance``: extra config fields (``pretrain_dataset``, ``pretrain_epochs`` ...).
        """
        exported = copy.deepcopy(self.encoder_to_export(which))
        methods = list(getattr(self, "method_names", None) or [self.method_name])
        fields: dict[str, Any] = {"pretext_methods": methods}
        fields.update(provenance or {})
        for key, value in fields.items():
            setattr(exported.config, key, value)
        exported.requires_grad_(True)
        return exported

    def encoder_to_export(self, which: str = "auto") -> HfsslModel:
        """The encoder (no copy) that :meth:`export_backbone` would export for ``which``.

        The trainer's online kNN monitor scores this one, so that it scores what users get
        (DINO's teacher by default, not its student).
        """
        return self._backbone_for_export(self.default_export if which == "auto" else which)

    def _backbone_for_export(self, which: str) -> HfsslModel:
        if which != "online":
            raise ConfigError(
                f"{type(self).__name__} has one encoder; which={which!r} is not available",
                "use which='online' (the target encoder exists only for BYOL and MoCo v2)",
            )
        return self.backbone


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of ``logits (N, K)`` against ``labels (N,)`` as a detached scalar."""
    return (logits.detach().argmax(dim=-1) == labels).float().mean()
