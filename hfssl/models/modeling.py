"""hfssl's transformers models: the backbone (``HfsslModel``) and the task models on top of it.

* ``HfsslModel``: timm 2D backbone or 3D backbone; ``forward(pixel_values)`` gives the pooled
  embedding (``pooler_output``) and the multi-scale ``feature_maps``.
* ``HfsslForImageClassification``: backbone + linear / MLP head; single-label, multi-label,
  regression and ordinal (MSE on grades, ``predict_grades``) problem types.
* ``HfsslForSegmentation``: backbone + U-Net decoder (skips on/off), logits at input size,
  Dice + CE/BCE loss.

Loading is strict: ``from_pretrained`` reads safetensors only and raises ``CheckpointError``
(naming the keys) when a backbone weight is missing, has another shape, or the checkpoint
holds backbone weights the model does not have, instead of transformers' silent random init.
Task heads missing from a backbone-only checkpoint are initialised fresh and logged; use
``from_backbone`` to get the report of what was transferred.

Weight init: timm initialises its models at construction; transformers' ``post_init`` runs
``_init_weights`` on every module, which for 2D backbones here does nothing, so timm's init
(kaiming convs, unit BatchNorms, zeroed last BN per block, ViT's trunc-normal) survives.
hfssl's own modules (3D backbones, decoder, heads) use ``layers.init_module_weights``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput, SemanticSegmenterOutput
from transformers.utils import ModelOutput

from hfssl.errors import CheckpointError, ConfigError, DataError
from hfssl.models.configuration import HfsslConfig
from hfssl.models.decoders import UNetDecoder
from hfssl.models.heads import (
    ClassificationHead,
    classification_loss,
    grades_from_values,
    ordinal_probabilities,
    resolve_problem_type,
    segmentation_loss,
)
from hfssl.models.layers import init_module_weights
from hfssl.utils.logging import get_logger

logger = get_logger(__name__)

WEIGHTS_NAME = "model.safetensors"
_PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth", "model.ckpt")


@dataclass
class HfsslModelOutput(ModelOutput):
    """Output of :class:`HfsslModel`.

    Args:
        last_hidden_state: the deepest feature map, ``(B, C, h, w[, d])``.
        pooler_output: the pooled embedding, ``(B, feature_dim)``.
        feature_maps: all feature maps, shallow to deep (ViT tokens reshaped to NCHW).
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    feature_maps: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class TransferReport:
    """What ``from_backbone`` did: keys loaded from the source, keys initialised fresh, source keys unused."""

    source: str
    transfer: str
    loaded: list[str] = dataclasses.field(default_factory=list)
    fresh: list[str] = dataclasses.field(default_factory=list)
    unused: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One paragraph for logs: counts and the fresh keys (grouped by module)."""
        fresh_modules = sorted({k.rsplit(".", 1)[0] for k in self.fresh})
        text = (
            f"transfer={self.transfer} from {self.source}: {len(self.loaded)} tensors loaded, "
            f"{len(self.fresh)} initialised fresh, {len(self.unused)} source tensors unused"
        )
        if fresh_modules:
            text += f"; fresh modules: {', '.join(fresh_modules)}"
        return text


def _strip_base(key: str) -> str:
    return key[len("hfssl.") :] if key.startswith("hfssl.") else key


class HfsslPreTrainedModel(PreTrainedModel):
    """Base class: config class, strict safetensors-only loading, init of hfssl's own modules."""

    config: HfsslConfig
    config_class = HfsslConfig
    base_model_prefix = "hfssl"
    main_input_name = "pixel_values"
    input_modalities = "image"
    # state-dict key prefixes (without the ``hfssl.`` base prefix) of the task head, which may be
    # initialised fresh when loading a backbone-only checkpoint
    _head_prefixes: tuple[str, ...] = ()

    def _init_weights(self, module: nn.Module) -> None:
        """Task heads and decoders (hfssl's own modules); ``HfsslModel`` handles the backbone."""
        init_module_weights(module)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any
    ):
        """transformers' ``from_pretrained``, safetensors only, raising ``CheckpointError`` on key mismatches.

        ``ignore_mismatched_sizes=True`` re-initialises mismatched *head* weights (e.g. another
        ``num_labels``); backbone mismatches always raise. ``output_loading_info=True`` returns
        ``(model, info)`` as in transformers.
        """
        if kwargs.get("use_safetensors") is False:
            raise CheckpointError(
                "hfssl loads safetensors checkpoints only (pickle files can run code)",
                "drop use_safetensors=False; convert the checkpoint to model.safetensors",
            )
        kwargs["use_safetensors"] = True
        want_info = kwargs.pop("output_loading_info", False)
        allow_head_mismatch = bool(kwargs.pop("ignore_mismatched_sizes", False))
        path = str(pretrained_model_name_or_path)
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, WEIGHTS_NAME)):
            found = [n for n in _PICKLE_NAMES if os.path.isfile(os.path.join(path, n))]
            what = f"only pickle weights ({', '.join(found)})" if found else f"no {WEIGHTS_NAME}"
            raise CheckpointError(
                f"checkpoint folder {path} has {what}",
                "save it with save_pretrained (writes model.safetensors); hfssl never unpickles weights",
            )
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path,
                *model_args,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # we check the mismatches ourselves below
                **kwargs,
            )
        except (OSError, ValueError, SafetensorError) as err:  # SafetensorError: truncated/corrupt weights
            if isinstance(err, ConfigError):
                raise
            raise CheckpointError(
                f"cannot load an hfssl checkpoint from {path}: {' '.join(str(err).split())[:300]}",
                "give a folder written by save_pretrained (config.json + model.safetensors) or a Hub repo id",
            ) from err
        cls._check_loading_info(model, info, path, allow_head_mismatch)
        for module in model.modules():
            if isinstance(module, HfsslModel):
                module._restore_non_persistent_buffers()
        return (model, info) if want_info else model

    @classmethod
    def _check_loading_info(cls, model: nn.Module, info: dict, path: str, allow_head_mismatch: bool) -> None:
        def is_head(key: str) -> bool:
            return _strip_base(key).startswith(cls._head_prefixes) if cls._head_prefixes else False

        def is_backbone(key: str) -> bool:
            return _strip_base(key).startswith("backbone.")

        missing = sorted(info.get("missing_keys") or ())
        mismatched = sorted(info.get("mismatched_keys") or ())
        unexpected = sorted(info.get("unexpected_keys") or ())
        bad_missing = [k for k in missing if not is_head(k)]
        bad_mismatch = [m for m in mismatched if not (allow_head_mismatch and is_head(m[0]))]
        bad_unexpected = [k for k in unexpected if is_backbone(k)]
        problems = []
        if bad_mismatch:
            shown = "; ".join(
                f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in bad_mismatch[:8]
            )
            problems.append(f"{len(bad_mismatch)} weights with other shapes ({shown})")
        if bad_missing:
            problems.append(f"{len(bad_missing)} weights missing ({', '.join(bad_missing[:8])})")
        if bad_unexpected:
            problems.append(
                f"{len(bad_unexpected)} backbone weights the model lacks ({', '.join(bad_unexpected[:8])})"
            )
        if problems:
            raise CheckpointError(
                f"checkpoint {path} does not fit {cls.__name__}({model.config.backbone}): "
                + "; ".join(problems),
                "load it with the config it was saved with (do not pass another config), or use from_backbone "
                "for a new task head",
            )
        fresh = [k for k in missing if is_head(k)] + [m[0] for m in mismatched]
        if fresh:
            modules = sorted({".".join(_strip_base(k).split(".")[:2]) for k in fresh})
            logger.warning(
                f"{cls.__name__} from {path}: {len(fresh)} task-head tensors initialised fresh ({', '.join(modules)})"
            )
        other = [k for k in unexpected if not is_backbone(k)]
        if other:
            logger.info(
                f"{cls.__name__} from {path}: ignored {len(other)} non-backbone weights ({other[0]} ...)"
            )

    @classmethod
    def from_backbone(
        cls,
        backbone: str | os.PathLike | nn.Module,
        transfer: Literal["encoder", "all"] = "encoder",
        **config_overrides: Any,
    ):
        """Build this task model from a pretrained backbone; return ``(model, TransferReport)``.

        Args:
            backbone: checkpoint folder / Hub repo id of any hfssl model, or a live module (an
                ``HfsslModel``, a task model, or a pretext model holding an ``HfsslModel`` and,
                for ``transfer="all"``, a ``decoder`` :class:`UNetDecoder`).
            transfer: ``"encoder"`` loads the backbone weights only; ``"all"`` also loads decoder
                weights whose names and shapes match (generative pretext methods pretrain it).
                The backbone must transfer whole; everything else is initialised fresh.
            **config_overrides: task settings for the new model, e.g. ``num_labels=2``,
                ``problem_type="ordinal"``, ``decoder_skip_connections=False``.
        """
        if transfer not in ("encoder", "all"):
            raise ConfigError(f"transfer must be 'encoder' or 'all', got {transfer!r}", "use encoder or all")
        source_name, source_config, source_sd = _read_source(backbone)
        cfg = source_config.to_dict()
        for key in (
            "feature_dim",
            "feature_channels",
            "feature_reductions",
            "architectures",
            "transformers_version",
        ):
            cfg.pop(key, None)
        if "num_labels" in config_overrides or "id2label" in config_overrides:
            cfg.pop("id2label", None)
            cfg.pop("label2id", None)
        cfg.update(config_overrides)
        config = HfsslConfig.from_dict(cfg)
        model = cls(config)
        report = TransferReport(source=source_name, transfer=transfer)
        to_load: dict[str, torch.Tensor] = {}
        bad: list[str] = []
        used: set[str] = set()
        for key, tensor in model.state_dict().items():
            name = _strip_base(key)
            src = source_sd.get(name)
            is_encoder = name.startswith("backbone.")
            wanted = is_encoder or (transfer == "all" and name.startswith("decoder."))
            if wanted and src is not None and tuple(src.shape) == tuple(tensor.shape):
                to_load[key] = src
                used.add(name)
                report.loaded.append(key)
            elif is_encoder:
                bad.append(
                    f"{name} ({'missing' if src is None else f'shape {tuple(src.shape)} vs {tuple(tensor.shape)}'})"
                )
            else:
                report.fresh.append(key)
        if bad:
            raise CheckpointError(
                f"the backbone from {source_name} does not fit {config.backbone}: {len(bad)} weights differ "
                f"({'; '.join(bad[:8])})",
                "do not override architecture fields (backbone, in_chans, backbone_kwargs ...) in from_backbone",
            )
        model.load_state_dict(to_load, strict=False)
        report.unused = sorted(set(source_sd) - used)
        logger.info(f"{cls.__name__}.from_backbone: {report.summary()}")
        return model, report


def _read_source(backbone: str | os.PathLike | nn.Module) -> tuple[str, HfsslConfig, dict[str, torch.Tensor]]:
    """(name, config, state dict with keys ``backbone.*`` / ``decoder.*``) of a from_backbone source."""
    if isinstance(backbone, nn.Module):
        hfssl_model = backbone if isinstance(backbone, HfsslModel) else None
        if hfssl_model is None:
            hfssl_model = next((m for m in backbone.modules() if isinstance(m, HfsslModel)), None)
        if hfssl_model is None:
            raise CheckpointError(
                f"{type(backbone).__name__} holds no HfsslModel",
                "pass an hfssl model or its checkpoint folder",
            )
        sd = {k: v.detach() for k, v in hfssl_model.state_dict().items()}
        decoder = getattr(backbone, "decoder", None)
        if isinstance(decoder, UNetDecoder):
            sd.update({f"decoder.{k}": v.detach() for k, v in decoder.state_dict().items()})
        return type(backbone).__name__, hfssl_model.config, sd

    from safetensors.torch import load_file
    from transformers.utils import cached_file

    path = str(backbone)
    try:
        config_dict, _ = HfsslConfig.get_config_dict(path)
    except OSError as err:
        raise CheckpointError(
            f"no hfssl checkpoint at {path}: {err}", "give a folder written by save_pretrained"
        ) from err
    if config_dict.get("model_type") != HfsslConfig.model_type:
        raise CheckpointError(
            f"{path} holds a {config_dict.get('model_type')!r} model, not an hfssl one",
            "use an hfssl checkpoint (config.json with model_type 'hfssl')",
        )
    config = HfsslConfig.from_dict(config_dict)
    try:
        weights = cached_file(path, WEIGHTS_NAME)
    except OSError as err:
        raise CheckpointError(
            f"{path} has no {WEIGHTS_NAME}", "hfssl reads safetensors only; re-save with save_pretrained"
        ) from err
    sd = {_strip_base(k): v for k, v in load_file(weights).items()}
    return path, config, sd


class HfsslModel(HfsslPreTrainedModel):
    """The backbone: pooled embedding + multi-scale feature maps.

    ``model.backbone`` is the timm model (2D) or hfssl's 3D network; its state-dict keys are
    timm's own under the ``backbone.`` prefix.
    """

    # task-model checkpoints load into the backbone alone: their heads are expected extras
    _keys_to_ignore_on_load_unexpected = [r"^classifier\.", r"^decoder\."]

    def __init__(self, config: HfsslConfig) -> None:
        super().__init__(config)
        if config.is_3d:
            from hfssl.models.backbones_3d import build_backbone_3d

            self.backbone = build_backbone_3d(config)
        else:
            from hfssl.models.backbones import build_timm_model

            self.backbone = build_timm_model(
                config.backbone,
                config.in_chans,
                config.image_size,
                config.backbone_kwargs,
                config.small_input_stem,
            )
        # Built on the meta device by from_pretrained: timm's non-persistent buffers (e.g. RoPE
        # tables) are not in the checkpoint and must be recomputed after loading.
        self._restore_buffers = not config.is_3d and any(p.is_meta for p in self.backbone.parameters())
        self.post_init()

    # ------------------------------------------------------------------ properties (API contract)
    @property
    def num_features(self) -> int:
        """Size of the pooled embedding (``config.feature_dim``)."""
        return int(self.config.feature_dim)

    @property
    def feature_channels(self) -> list[int]:
        """Channels of each feature map, shallow to deep."""
        return list(self.config.feature_channels)

    @property
    def feature_reductions(self) -> list[int]:
        """Stride of each feature map with respect to the input."""
        return list(self.config.feature_reductions)

    # ------------------------------------------------------------------ init
    def _init_weights(self, module: nn.Module) -> None:
        if self.config.is_3d:
            init_module_weights(module)
        # 2D: timm initialised the backbone at construction; leave it as timm made it.

    def _restore_non_persistent_buffers(self) -> None:
        """Recompute timm's non-persistent buffers after a meta-device load (from_pretrained calls this)."""
        if not self._restore_buffers:
            return
        buffers = {
            f"{mod_name}.{name}".lstrip("."): buf
            for mod_name, mod in self.backbone.named_modules()
            for name, buf in mod.named_buffers(recurse=False)
            if name in mod._non_persistent_buffers_set
        }
        self._restore_buffers = False
        if not buffers:
            return
        from hfssl.models.backbones import build_timm_model

        cfg = self.config
        reference = build_timm_model(
            cfg.backbone,
            cfg.in_chans,
            cfg.image_size,
            cfg.backbone_kwargs,
            cfg.small_input_stem,
            device="cpu",
        )
        ref = dict(reference.named_buffers())
        with torch.no_grad():
            for name, buf in buffers.items():
                buf.copy_(ref[name].to(device=buf.device, dtype=buf.dtype))

    # ------------------------------------------------------------------ forward
    def _check_input(self, pixel_values: torch.Tensor) -> None:
        want = self.config.spatial_dims + 2
        if pixel_values.ndim != want or pixel_values.shape[1] != self.config.in_chans:
            layout = "(B, C, H, W)" if want == 4 else "(B, C, D, H, W)"
            raise DataError(
                f"pixel_values has shape {tuple(pixel_values.shape)}; this {self.config.backbone} expects "
                f"{layout} with C={self.config.in_chans}",
                "check the image channels (grey-scale vs RGB) and the batch dimension",
            )

    def forward_features(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``(pooled (B, feature_dim), feature maps shallow to deep)`` - the cheap path for pretext heads."""
        self._check_input(pixel_values)
        if self.config.is_3d:
            pooled, maps = self.backbone.forward_features(pixel_values)
            maps = [maps[i] for i in self.config.feature_indices]
        else:
            from hfssl.models.backbones import timm_forward_features

            pooled, maps = timm_forward_features(self.backbone, pixel_values, self.config.feature_indices)
        return pooled, tuple(maps)

    def forward(
        self, pixel_values: torch.Tensor, return_dict: bool | None = None, **kwargs: Any
    ) -> HfsslModelOutput | tuple:
        """Embed ``pixel_values`` (float, ``(B, C, H, W)`` or ``(B, C, D, H, W)``)."""
        pooled, maps = self.forward_features(pixel_values)
        out = HfsslModelOutput(last_hidden_state=maps[-1], pooler_output=pooled, feature_maps=maps)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return out if return_dict else out.to_tuple()


class HfsslForImageClassification(HfsslPreTrainedModel):
    """Backbone + classification head (``classifier_head``: linear or the paper's MLP).

    ``problem_type``: ``single_label_classification`` (CE), ``multi_label_classification``
    (BCE), ``regression`` (MSE) or ``ordinal`` (grades 0..num_labels-1 through ``config.ordinal_head``:
    ``regression`` = one output with MSE as the paper trains retinopathy grading, ``classification``
    = K logits with CE, ``cumulative`` = K-1 rank-consistent logits, CORAL); read grades with
    ``predict_grades`` and per-grade probabilities with ``predict_proba``.
    """

    _head_prefixes = ("classifier.",)

    def __init__(self, config: HfsslConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.hfssl = HfsslModel(config)
        self.classifier = ClassificationHead(
            config.feature_dim,
            config.num_outputs,
            kind=config.classifier_head,
            hidden_dim=config.classifier_hidden_dim,
            dropout=config.classifier_dropout,
            cumulative=config.resolved_ordinal_head == "cumulative",
        )
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> ImageClassifierOutput | tuple:
        """Logits ``(B, config.num_outputs)``; ``loss`` when ``labels`` are given."""
        pooled, maps = self.hfssl.forward_features(pixel_values)
        logits = self.classifier(pooled)
        loss = None
        if labels is not None:
            problem = resolve_problem_type(self.config.problem_type, self.config.num_labels, labels)
            loss = classification_loss(
                logits,
                labels,
                problem,
                self.config.num_labels,
                ordinal_head=self.config.resolved_ordinal_head or "regression",
            )
        out = ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=maps if output_hidden_states else None
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return out if return_dict else out.to_tuple()

    def predict_grades(self, logits: torch.Tensor) -> torch.Tensor:
        """Ordinal outputs -> integer grades ``(B,)``: the regressed grade cut at
        ``config.ordinal_thresholds`` (else rounded and clipped), or the probabilistic heads' most
        probable grade."""
        head = self.config.resolved_ordinal_head or "regression"
        if head == "regression":
            return grades_from_values(logits, int(self.config.num_labels), self.config.ordinal_thresholds)
        return ordinal_probabilities(logits, head).argmax(dim=1)

    def predict_proba(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-class (per-grade) probabilities ``(B, num_labels)``: softmax, or the ordinal head's
        grade probabilities; ``ConfigError`` for the regression ordinal head."""
        head = self.config.resolved_ordinal_head
        if head is not None:
            return ordinal_probabilities(logits, head)
        if self.config.problem_type == "multi_label_classification":
            return torch.sigmoid(logits.float())
        return logits.float().softmax(dim=1)


class HfsslForSegmentation(HfsslPreTrainedModel):
    """Backbone + U-Net decoder (256/128/64 by default, skips per ``decoder_skip_connections``).

    ``num_labels=1``: binary masks (sigmoid; Dice + BCE). ``num_labels=K>=2``: class-index masks
    (softmax; Dice over the foreground classes + CE). Logits come at the input's resolution.
    """

    _head_prefixes = ("decoder.",)

    def __init__(self, config: HfsslConfig) -> None:
        super().__init__(config)
        self.hfssl = HfsslModel(config)
        self.decoder = UNetDecoder(
            config.feature_channels,
            config.decoder_channels,
            out_channels=config.num_labels,
            spatial_dims=config.spatial_dims,
            skip_connections=config.decoder_skip_connections,
        )
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> SemanticSegmenterOutput | tuple:
        """Logits ``(B, num_labels, *input_size)``; ``loss`` (Dice + CE/BCE) when ``labels`` are given."""
        _, maps = self.hfssl.forward_features(pixel_values)
        logits = self.decoder(maps, output_size=pixel_values.shape[2:])
        loss = segmentation_loss(logits, labels) if labels is not None else None
        out = SemanticSegmenterOutput(
            loss=loss, logits=logits, hidden_states=maps if output_hidden_states else None
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return out if return_dict else out.to_tuple()
