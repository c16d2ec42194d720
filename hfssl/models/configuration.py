"""``HfsslConfig``: the configuration every hfssl checkpoint carries in its ``config.json``.

It follows transformers 5's convention for configs: a strict dataclass (``@strict``) whose
fields are declared with type annotations and defaults, checked in ``__post_init__``. Values a
user can get wrong raise :class:`hfssl.errors.ConfigError` at construction, with a fix hint.

Four groups of fields:

* **architecture** (``backbone``, ``spatial_dims``, ``in_chans``, ``image_size``,
  ``backbone_kwargs``, ``small_input_stem``, ``feature_indices``): what to build;
* **derived** (``feature_dim``, ``feature_channels``, ``feature_reductions``): computed at
  construction from the architecture (never set them by hand; a saved value that disagrees
  with what this version of hfssl/timm builds is an error, not a silent change);
* **task heads** (``classifier_head``, ``classifier_hidden_dim``, ``classifier_dropout``,
  ``decoder_channels``, ``decoder_skip_connections``, plus transformers' ``num_labels``,
  ``id2label`` and ``problem_type``);
* **provenance**, filled by pretraining (``pretext_methods``, ``pretrain_dataset``,
  ``pretrain_image_size``, ``pretrain_epochs``, ``pretrain_seed``, ``pretrain_init_from``,
  ``hfssl_version``) and the preprocessing the weights expect (``image_mean``, ``image_std``).
"""

# No ``from __future__ import annotations`` here: huggingface_hub's @strict validates field
# types from real annotation objects and silently skips string annotations.
import functools
from typing import Any, Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from hfssl.errors import ConfigError

BACKBONES_3D: tuple[str, ...] = ("unet3d_encoder", "resnet18_3d")

# Fields that define the network; changing one after construction re-derives the feature fields.
_ARCH_FIELDS = frozenset(
    {
        "backbone",
        "spatial_dims",
        "in_chans",
        "image_size",
        "backbone_kwargs",
        "small_input_stem",
        "feature_indices",
    }
)
# Keys of ``backbone_kwargs`` that hfssl sets itself (from the config's own fields).
_RESERVED_BACKBONE_KWARGS = frozenset(
    {"pretrained", "num_classes", "in_chans", "features_only", "out_indices"}
)


def _hfssl_version() -> str:
    from hfssl import __version__

    return __version__


@strict
class HfsslConfig(PreTrainedConfig):
    r"""Configuration of an hfssl backbone (and of the task models built on it).

    Args:
        backbone (`str`, defaults to `"resnet18"`):
            2D: any timm model name (``resnet18``, ``resnet50``, ``vit_tiny_patch16_224``,
            ``convnext_atto`` ...), always built with ``pretrained=False``.
            3D: ``"unet3d_encoder"`` (the paper's 4-block 3D U-Net encoder, 64/128/256/512
            channels) or ``"resnet18_3d"``.
        spatial_dims (`int`, defaults to 2): 2 for images, 3 for volumes.
        in_chans (`int`, defaults to 1): input channels (1 for grey-scale, 3 for RGB).
        image_size (`int`, defaults to 28): side of the (square / cubic) training images. ViTs are
            built for it (``img_size``); other sizes still work where the architecture allows.
        backbone_kwargs (`dict`, defaults to `{}`): extra keyword arguments for the backbone, e.g.
            ``{"patch_size": 4}`` for a ViT on 28 px images, ``{"drop_path_rate": 0.1}``; for
            ``unet3d_encoder``: ``channels`` (4 ints) and ``norm`` (``"batch"``, ``"instance"``,
            ``"group"``); for ``resnet18_3d``: ``norm``. ViTs get ``dynamic_img_size=True`` unless set
            here, so that tiles smaller than ``image_size`` work.
        small_input_stem (`bool`, *optional*): ResNet stem for small images as in the MedMNIST
            baselines: a 3x3 stride-1 first conv and no max-pool. ``None`` (auto) turns it on for
            ResNets with ``image_size <= 64`` and off otherwise; resolved to a bool at construction.
        feature_indices (`list[int]`, *optional*): which of the backbone's stages form
            ``feature_maps``. ``None`` (auto): every stage for CNNs (stem included for ResNets),
            4 evenly spaced blocks for ViTs. Resolved at construction.
        feature_dim (`int`): derived, size of the pooled embedding (``pooler_output``).
        feature_channels (`list[int]`): derived, channels of each feature map, shallow to deep.
        feature_reductions (`list[int]`): derived, stride of each feature map w.r.t. the input.
        classifier_head (`str`, defaults to `"linear"`): ``"linear"`` (GAP -> linear) or ``"mlp"``
            (GAP -> FC ``classifier_hidden_dim`` -> ReLU -> classes, as in the paper).
        classifier_hidden_dim (`int`, defaults to 1024): hidden width of the ``"mlp"`` head.
        classifier_dropout (`float`, defaults to 0.0): dropout before the last linear layer.
        decoder_channels (`list[int]`, defaults to `(256, 128, 64)`): U-Net decoder widths.
        decoder_skip_connections (`bool`, defaults to `True`): U-Net skips on or off.
        problem_type (`str`, *optional*): as in transformers, plus ``"ordinal"``: grades
            ``0..num_labels-1`` predicted by the ``ordinal_head`` (see
            ``HfsslForImageClassification.predict_grades`` / ``predict_proba``).
        ordinal_head (`str`, *optional*): for ``problem_type="ordinal"``: ``"regression"`` (one output,
            MSE), ``"classification"`` (K logits, CE) or ``"cumulative"`` (K-1 rank-consistent logits,
            CORAL); ``None`` = ``hfssl.models.heads.DEFAULT_ORDINAL_HEAD``. Refused on other problem types.
        ordinal_thresholds (`list[float]`, *optional*): K-1 cut points that turn a regressed grade into
            an integer grade (tuned on a validation split); ``None`` = round and clip.
        pretext_methods (`list[str]`, *optional*): pretext method(s) the weights were trained with.
        pretrain_dataset (`str`, *optional*): dataset used for pretraining.
        pretrain_image_size (`int`, *optional*): image size used for pretraining.
        pretrain_epochs (`int`, *optional*): pretraining epochs.
        pretrain_seed (`int`, *optional*): pretraining seed.
        pretrain_init_from (`dict`, *optional*): the checkpoint pretraining started from
            (``--init-from``): ``spec``, ``kind`` (``backbone`` / ``pretext_model``), ``sha256`` of its
            weights, its ``pretext_methods`` and ``pretrain_dataset``; ``None``: random init.
        hfssl_version (`str`, *optional*): hfssl version that created the config (filled in).
        image_mean / image_std (`list[float]`, *optional*): per-channel normalisation the weights
            expect; ``None`` means pixel values in [0, 1] are used as they are.

    Example:

    ```python
    >>> from hfssl import HfsslConfig, HfsslModel
    >>> config = HfsslConfig(backbone="resnet18", spatial_dims=2, in_chans=1, image_size=28)
    >>> config.feature_dim, config.small_input_stem
    (512, True)
    >>> model = HfsslModel(config)
    ```
    """

    model_type = "hfssl"

    # architecture
    backbone: str = "resnet18"
    spatial_dims: int = 2
    in_chans: int = 1
    image_size: int = 28
    backbone_kwargs: dict[str, Any] | None = None
    small_input_stem: bool | None = None
    feature_indices: list[int] | tuple[int, ...] | None = None
    # derived (filled in __post_init__)
    feature_dim: int | None = None
    feature_channels: list[int] | tuple[int, ...] | None = None
    feature_reductions: list[int] | tuple[int, ...] | None = None
    # task heads
    classifier_head: Literal["linear", "mlp"] = "linear"
    classifier_hidden_dim: int = 1024
    classifier_dropout: float = 0.0
    decoder_channels: list[int] | tuple[int, ...] = (256, 128, 64)
    decoder_skip_connections: bool = True
    problem_type: (
        Literal["regression", "single_label_classification", "multi_label_classification", "ordinal"] | None
    ) = None
    ordinal_head: Literal["regression", "classification", "cumulative"] | None = None
    ordinal_thresholds: list[float] | None = None
    # provenance
    pretext_methods: list[str] | None = None
    pretrain_dataset: str | None = None
    pretrain_image_size: int | None = None
    pretrain_epochs: int | None = None
    pretrain_seed: int | None = None
    pretrain_init_from: dict[str, Any] | None = None
    hfssl_version: str | None = None
    image_mean: list[float] | tuple[float, ...] | None = None
    image_std: list[float] | tuple[float, ...] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        self._validate_and_derive(check_saved=True)
        self._validate_heads()
        if self.hfssl_version is None:
            self.hfssl_version = _hfssl_version()
        super().__post_init__(**kwargs)
        self._validate_ordinal()  # needs num_labels, which transformers' __post_init__ sets

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        # Keep the derived fields true when an architecture field is changed after construction
        # (``from_pretrained(dir, image_size=64)`` does exactly that).
        if key in _ARCH_FIELDS and self.__dict__.get("_post_init_done", False):
            if key in ("backbone", "spatial_dims"):
                # choices resolved for the previous network do not carry over: back to auto
                object.__setattr__(self, "small_input_stem", None)
                object.__setattr__(self, "feature_indices", None)
            self._validate_and_derive(check_saved=False)

    # ------------------------------------------------------------------ validation
    def _validate_and_derive(self, check_saved: bool) -> None:
        """Check the architecture fields and compute the derived feature fields."""
        if self.spatial_dims not in (2, 3):
            raise ConfigError(
                f"spatial_dims must be 2 or 3, got {self.spatial_dims}", "use 2 for images, 3 for volumes"
            )
        if self.in_chans < 1:
            raise ConfigError(f"in_chans must be >= 1, got {self.in_chans}", "use 1 (grey-scale) or 3 (RGB)")
        if self.image_size < 1:
            raise ConfigError(
                f"image_size must be >= 1, got {self.image_size}", "give the image side in pixels, e.g. 28"
            )
        kwargs = dict(self.backbone_kwargs or {})
        reserved = sorted(set(kwargs) & _RESERVED_BACKBONE_KWARGS)
        if reserved:
            raise ConfigError(
                f"backbone_kwargs may not set {', '.join(reserved)}: hfssl sets them itself",
                "use the config fields in_chans/num_labels instead and drop these keys",
            )
        if self.backbone in BACKBONES_3D:
            if self.spatial_dims != 3:
                raise ConfigError(
                    f"backbone {self.backbone!r} is a 3D network but spatial_dims={self.spatial_dims}",
                    "set spatial_dims=3",
                )
            from hfssl.models.backbones_3d import describe_backbone_3d

            spec = describe_backbone_3d(
                self.backbone, self.in_chans, self.image_size, kwargs, self.small_input_stem
            )
        else:
            if self.spatial_dims != 2:
                raise ConfigError(
                    f"backbone {self.backbone!r} is a 2D timm model but spatial_dims={self.spatial_dims}",
                    f"use spatial_dims=2, or a 3D backbone: {', '.join(BACKBONES_3D)}",
                )
            from hfssl.models.backbones import describe_timm_backbone

            spec = describe_timm_backbone(
                self.backbone, self.in_chans, self.image_size, _freeze(kwargs), self.small_input_stem
            )
        n_stages = len(spec.channels)
        if self.feature_indices is None:
            indices = list(spec.default_indices)
        else:
            indices = [int(i) for i in self.feature_indices]
            bad = [i for i in indices if not 0 <= i < n_stages]
            if not indices or bad or sorted(set(indices)) != indices:
                raise ConfigError(
                    f"feature_indices {list(self.feature_indices)} is invalid for {self.backbone}, which has "
                    f"{n_stages} stages",
                    f"give increasing indices in 0..{n_stages - 1}, or None for the default",
                )
        derived = {
            "feature_dim": spec.feature_dim,
            "feature_channels": [spec.channels[i] for i in indices],
            "feature_reductions": [spec.reductions[i] for i in indices],
        }
        if check_saved:
            for name, value in derived.items():
                saved = getattr(self, name)
                if (
                    saved is not None
                    and (list(saved) if isinstance(saved, (list, tuple)) else saved) != value
                ):
                    raise ConfigError(
                        f"config says {name}={saved!r} but backbone {self.backbone!r} with these settings gives "
                        f"{value!r}",
                        "the checkpoint was made with another architecture or library version; drop the "
                        f"{name} entry to re-derive it, or use matching hfssl/timm versions",
                    )
        # object.__setattr__ skips the re-derive hook (and the strict validators: values are ours).
        object.__setattr__(self, "small_input_stem", spec.small_input_stem)
        object.__setattr__(self, "feature_indices", indices)
        object.__setattr__(self, "backbone_kwargs", kwargs)
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "HfsslConfig":
        """As transformers', plus one compatibility rule: an ordinal config saved before
        ``ordinal_head`` existed (no such key) was made with the regression head, the only one then,
        so it loads as ``regression`` whatever today's default is."""
        if config_dict.get("problem_type") == "ordinal" and "ordinal_head" not in config_dict:
            config_dict = {**config_dict, "ordinal_head": "regression"}
        return super().from_dict(config_dict, **kwargs)

    def _validate_ordinal(self) -> None:
        if self.ordinal_head is not None or self.ordinal_thresholds is not None:
            from hfssl.models.heads import check_ordinal_head

            if self.problem_type != "ordinal":
                raise ConfigError(
                    f"ordinal_head/ordinal_thresholds are set but problem_type is {self.problem_type!r}",
                    "set problem_type='ordinal' for graded labels, or drop ordinal_head",
                )
            check_ordinal_head(self.resolved_ordinal_head, int(self.num_labels))
            if self.ordinal_thresholds is not None and (
                self.resolved_ordinal_head != "regression"
                or len(self.ordinal_thresholds) != int(self.num_labels) - 1
            ):
                raise ConfigError(
                    f"ordinal_thresholds need the regression head and {int(self.num_labels) - 1} cut points "
                    f"(got {self.resolved_ordinal_head} and {len(self.ordinal_thresholds)})",
                    "drop ordinal_thresholds or give one cut point between each pair of grades",
                )

    def _validate_heads(self) -> None:
        if self.classifier_hidden_dim < 1:
            raise ConfigError(
                f"classifier_hidden_dim must be >= 1, got {self.classifier_hidden_dim}", "e.g. 1024"
            )
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ConfigError(
                f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}", "e.g. 0.0"
            )
        if not self.decoder_channels or any(int(c) < 1 for c in self.decoder_channels):
            raise ConfigError(
                f"decoder_channels must be a non-empty list of positive ints, got {self.decoder_channels}",
                "e.g. [256, 128, 64]",
            )
        if len(self.decoder_channels) >= len(self.feature_channels):
            raise ConfigError(
                f"decoder_channels has {len(self.decoder_channels)} stages but the backbone gives only "
                f"{len(self.feature_channels)} feature maps",
                f"use at most {len(self.feature_channels) - 1} decoder stages",
            )
        object.__setattr__(self, "decoder_channels", [int(c) for c in self.decoder_channels])
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.in_chans:
                raise ConfigError(
                    f"{name} has {len(value)} values but in_chans={self.in_chans}",
                    f"give one {name} per channel",
                )

    # ------------------------------------------------------------------ helpers
    @property
    def is_3d(self) -> bool:
        """True for volumetric (3D) backbones."""
        return self.spatial_dims == 3

    @property
    def resolved_ordinal_head(self) -> str | None:
        """The ordinal head in use (``ordinal_head`` or the default), ``None`` for other problem types."""
        if self.problem_type != "ordinal":
            return None
        from hfssl.models.heads import DEFAULT_ORDINAL_HEAD

        return self.ordinal_head or DEFAULT_ORDINAL_HEAD

    @property
    def num_outputs(self) -> int:
        """Outputs of the classification head: ``num_labels``; ordinal: 1 (regression), K
        (classification) or K-1 (cumulative)."""
        head = self.resolved_ordinal_head
        if head is None:
            return int(self.num_labels)
        from hfssl.models.heads import ordinal_num_outputs

        return ordinal_num_outputs(head, int(self.num_labels))


def _freeze(obj: Any) -> Any:
    """A hashable copy of a JSON-like value (for caching backbone descriptions)."""
    if isinstance(obj, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v) for v in obj)
    return obj


def _convert_strict_errors(init: Any) -> Any:
    """Re-raise the strict-dataclass type errors of ``__init__`` as :class:`ConfigError`."""
    from huggingface_hub.errors import (
        StrictDataclassClassValidationError,
        StrictDataclassFieldValidationError,
    )

    @functools.wraps(init)
    def __init__(self: HfsslConfig, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except (StrictDataclassFieldValidationError, StrictDataclassClassValidationError) as err:
            raise ConfigError(
                f"invalid HfsslConfig value: {err}", "see the HfsslConfig docstring for types"
            ) from err

    return __init__


HfsslConfig.__init__ = _convert_strict_errors(HfsslConfig.__init__)  # type: ignore[method-assign]
