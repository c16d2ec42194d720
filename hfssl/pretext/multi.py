"""Multi-SSL: a weighted combination of pretext tasks on ONE shared backbone (``rot+simclr``, ``mg+byol``).

Every sub-method is built as its own model (its heads, decoder, momentum copies, queue) and
then re-pointed at the shared :class:`~hfssl.models.HfsslModel` (``self.backbone``): the
sub-model keeps a plain reference to it, so its weights are stored once, under ``backbone.``.
Momentum methods' target/momentum encoders (any other ``HfsslModel`` inside a sub-model) are
re-made as frozen copies of the shared backbone, so they start equal to it and track it.

Each step runs every sub-method on the batch (each makes its own views) and combines the losses:

* fixed weights: ``loss = sum_i w_i * L_i`` (``rot:0.5+simclr:1``);
* learned weights (``rot:learned+simclr:learned``), the homoscedastic-uncertainty weighting of
  Kendall et al. (CVPR 2018): ``loss = sum_i exp(-s_i) * L_i + s_i`` with one trainable
  ``s_i`` (``log_vars``, starting at 0) per learned term. Fixed and learned terms can be mixed.

The output carries the first sub-method's ``embeddings`` (and the first ``logits`` /
``reconstruction`` any sub-method gives); ``metrics`` has every sub-method's metrics as
``"<method>/<metric>"`` plus ``"<method>/loss"`` and ``"<method>/weight"``.
:meth:`MultiPretextForPretraining.after_optimizer_step` forwards to the sub-methods that have
one (EMA updates). ``export_backbone()`` records all sub-method names as provenance.
"""

import dataclasses
import difflib
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig

from hfssl.errors import ConfigError
from hfssl.models import HfsslModel
from hfssl.models.decoders import UNetDecoder
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput
from hfssl.pretext.blocks import frozen_copy
from hfssl.pretext.registry import get_pretext_class, register_pretext


def method_config_fields(config_class: type[PretextConfig]) -> list[str]:
    """The settings a method's config declares itself (not transformers' generic ones, not the backbone)."""
    generic = {f.name for f in dataclasses.fields(PreTrainedConfig)} | {"backbone_config"}
    return [f.name for f in dataclasses.fields(config_class) if f.name not in generic]


def check_method_fields(name: str, config_class: type[PretextConfig], fields: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for settings ``config_class`` does not have (strict configs keep unknown keys)."""
    known = method_config_fields(config_class)
    unknown = sorted(set(fields) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"pretext task {name!r} has no setting {', '.join(unknown)}",
            f"{hint}its settings are: {', '.join(known)}",
        )


@strict
class MultiConfig(PretextConfig):
    r"""Configuration of a multi-SSL combination.

    Args:
        methods (`list[str]`): two or more pretext task names (``["rot", "simclr"]``).
        weights (`list[float | None]`, *optional*): loss weight of each method, ``None`` for a learned
            (uncertainty) weight; default: each method config's ``loss_weight``.
        method_configs (`dict[str, dict]`, *optional*): settings of each method's config, by
            method name (e.g. ``{"simclr": {"temperature": 0.5}}``); filled with every setting in
            use, so a saved combination rebuilds exactly.
    """

    model_type = "hfssl_multi"

    methods: list[str] | tuple[str, ...] = ()
    weights: list[float | int | None] | None = None
    method_configs: dict[str, dict[str, Any]] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        names = [get_pretext_class(m).method_name for m in self.methods]  # ConfigError for unknown names
        if len(names) < 2:
            raise ConfigError(
                f"multi-SSL needs two or more methods, got {names}",
                "combine methods such as rot+simclr, or use the single method's own model",
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"a pretext task appears twice in {names}", "list each method once")
        object.__setattr__(self, "methods", names)
        given = dict(self.method_configs or {})
        stray = sorted(set(given) - set(names))
        if stray:
            raise ConfigError(
                f"method_configs has settings for {', '.join(stray)}, which are not among the methods {names}",
                "key method_configs by the combined methods' names",
            )
        super().__post_init__(**kwargs)
        # build (= validate) every sub-config, then keep all of its settings
        resolved: dict[str, dict[str, Any]] = {}
        for name in names:
            config_class = get_pretext_class(name).config_class
            fields = dict(given.get(name) or {})
            check_method_fields(name, config_class, fields)
            sub = config_class(backbone_config=self.backbone_config, **fields)
            resolved[name] = {f: _jsonable(getattr(sub, f)) for f in method_config_fields(config_class)}
        object.__setattr__(self, "method_configs", resolved)
        if self.weights is None:
            weights: list[float | None] = [float(resolved[n]["loss_weight"]) for n in names]
        else:
            if len(self.weights) != len(names):
                raise ConfigError(
                    f"{len(self.weights)} weights for {len(names)} methods", "give one weight per method"
                )
            weights = [None if w is None else float(w) for w in self.weights]
            bad = [w for w in weights if w is not None and not w > 0]
            if bad:
                raise ConfigError(
                    f"loss weights must be > 0, got {bad}", "use positive weights or None (learned)"
                )
        object.__setattr__(self, "weights", weights)

    def sub_config(self, name: str) -> PretextConfig:
        """The config of sub-method ``name`` (on this combination's backbone)."""
        config_class = get_pretext_class(name).config_class
        return config_class(backbone_config=self.backbone_config, **(self.method_configs or {})[name])

    @property
    def spec(self) -> str:
        """The combination as a method spec string, e.g. ``rot:0.5+simclr:learned``."""
        from hfssl.pretext.registry import MethodSpec

        return str(MethodSpec(tuple(self.methods), tuple(self.weights or ())))


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def share_backbone(sub: PretextModel, shared: HfsslModel) -> None:
    """Re-point ``sub`` at the ``shared`` backbone and re-make its momentum copies from it.

    The sub-model's own backbone is dropped; ``sub.backbone`` becomes a plain (unregistered)
    reference, so the shared weights appear once in the combined state dict. Any other
    ``HfsslModel`` in ``sub`` (a momentum / target encoder) is replaced by a frozen copy of
    ``shared``.
    """
    del sub._modules["backbone"]
    object.__setattr__(sub, "backbone", shared)
    for path, module in list(sub.named_modules()):
        if path and isinstance(module, HfsslModel):
            parent_path, _, attr = path.rpartition(".")
            parent = sub.get_submodule(parent_path) if parent_path else sub
            setattr(parent, attr, frozen_copy(shared))


@register_pretext("multi")
class MultiPretextForPretraining(PretextModel):
    """Several pretext tasks on one shared backbone, with fixed or learned loss weights."""

    config_class = MultiConfig
    family = "multi"

    def __init__(self, config: MultiConfig) -> None:
        super().__init__(config)
        self.method_names = list(config.methods)
        tasks = {}
        for name in self.method_names:
            sub = get_pretext_class(name)(config.sub_config(name))
            share_backbone(sub, self.backbone)
            tasks[name] = sub
        self.tasks = nn.ModuleDict(tasks)
        self.learned = [w is None for w in config.weights]
        # s_i of the learned terms (Kendall et al.): loss_i * exp(-s_i) + s_i, starting at weight 1
        self.log_vars = nn.Parameter(torch.zeros(sum(self.learned))) if any(self.learned) else None
        self.post_init()

    # ------------------------------------------------------------------ contract
    @property
    def decoder(self) -> UNetDecoder | None:
        """The first sub-method's U-Net decoder (so ``from_backbone(..., transfer="all")`` finds it)."""
        for sub in self.tasks.values():
            dec = getattr(sub, "decoder", None)
            if isinstance(dec, UNetDecoder):
                return dec
        return None

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Forward to every sub-method with an EMA update (BYOL, MoCo v2, PCRL)."""
        for sub in self.tasks.values():
            step = getattr(sub, "after_optimizer_step", None)
            if step is not None:
                step()

    def _backbone_for_export(self, which: str) -> HfsslModel:
        if which == "online":
            return self.backbone
        if which == "target":
            for sub in self.tasks.values():
                try:
                    return sub._backbone_for_export("target")
                except ConfigError:
                    continue
        raise ConfigError(
            f"which={which!r} is not available for {'+'.join(self.method_names)}",
            "use which='online', or 'target' when a momentum method (byol, mocov2, pcrl) is combined",
        )

    def loss_weights(self) -> list[torch.Tensor]:
        """Current weight of each method's loss (``exp(-s_i)`` for learned ones), detached."""
        out, j = [], 0
        for w, learned in zip(self.config.weights, self.learned):
            if learned:
                out.append(torch.exp(-self.log_vars[j]).detach())
                j += 1
            else:
                out.append(torch.tensor(float(w), device=self.backbone.device))
        return out

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        total: torch.Tensor | None = None
        metrics: dict[str, torch.Tensor] = {}
        first: dict[str, Any] = {}
        j = 0
        for (name, sub), weight, learned in zip(self.tasks.items(), self.config.weights, self.learned):
            out = sub(pixel_values, generator=generator, return_dict=True)
            if learned:
                s = self.log_vars[j]
                term = torch.exp(-s) * out.loss + s
                metrics[f"{name}/weight"] = torch.exp(-s).detach()
                j += 1
            else:
                term = float(weight) * out.loss
                metrics[f"{name}/weight"] = out.loss.new_tensor(float(weight))
            total = term if total is None else total + term
            metrics[f"{name}/loss"] = out.loss.detach()
            for key, value in (out.metrics or {}).items():
                metrics[f"{name}/{key}"] = value
            # outputs of the first sub-method that gives them, kept in their pairs
            for group in (("embeddings",), ("logits", "labels"), ("reconstruction", "target")):
                if group[0] not in first and getattr(out, group[0]) is not None:
                    first.update({key: getattr(out, key) for key in group})
        result = PretextOutput(loss=total, metrics=metrics, **first)
        return result if return_dict is not False else result.to_tuple()
