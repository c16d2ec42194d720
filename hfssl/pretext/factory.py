"""Build a pretext model from a method spec: ``create_pretext_model("rot:0.5+simclr", backbone_config)``.

One method gives that method's model; a combination (``+``) gives a
:class:`~hfssl.pretext.multi.MultiPretextForPretraining` on one shared backbone. Unknown names,
a method that does not support the data's dimensionality, MAE on a CNN and unknown settings
all raise :class:`~hfssl.errors.ConfigError` with a fix hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hfssl.errors import ConfigError
from hfssl.pretext.registry import canonical_name, get_pretext_class, parse_method_spec

if TYPE_CHECKING:
    from hfssl.models import HfsslConfig
    from hfssl.pretext.base import PretextModel


def create_pretext_model(
    spec: str, backbone_config: HfsslConfig | dict[str, Any], **overrides: Any
) -> PretextModel:
    """A freshly initialised pretext model for ``spec`` on a backbone built from ``backbone_config``.

    Args:
        spec: one method (``"simclr"``, ``"rkb+"``) or a combination with optional weights
            (``"rot:0.5+simclr:1"``, ``"mg:learned+byol:learned"``); see
            :func:`~hfssl.pretext.registry.parse_method_spec`.
        backbone_config: the backbone's :class:`~hfssl.models.HfsslConfig` (or its dict).
        **overrides: config settings. For one method: its config fields
            (``temperature=0.5``). For a combination: ``"<method>.<field>"`` keys
            (``**{"simclr.temperature": 0.5}``), ``<method>={...}`` dicts, or plain field names,
            which go to every combined method that has that field (``head_hidden_dim=256``).
    """
    parsed = parse_method_spec(spec)
    if not parsed.is_multi:
        return _create_single(parsed.methods[0], parsed.weights[0], backbone_config, overrides)

    from hfssl.pretext.multi import MultiConfig, MultiPretextForPretraining, method_config_fields

    methods = list(parsed.methods)
    per_method: dict[str, dict[str, Any]] = {m: {} for m in methods}
    fields_of = {m: set(method_config_fields(get_pretext_class(m).config_class)) for m in methods}
    for key, value in overrides.items():
        name = key.lower().replace("-", "_")
        if name in per_method and isinstance(value, dict):
            per_method[name].update(value)
        elif "." in key:
            method, _, field = key.partition(".")
            method = canonical_name(method)
            if method not in per_method:
                raise ConfigError(
                    f"setting {key!r} is for {method!r}, which is not in {spec!r}",
                    f"prefix settings with one of {', '.join(methods)}",
                )
            per_method[method][field] = value
        else:
            targets = [m for m in methods if key in fields_of[m]]
            if not targets:
                raise ConfigError(
                    f"no method in {spec!r} has a setting {key!r}",
                    "check the spelling, or prefix it with the method name (e.g. simclr.temperature)",
                )
            for m in targets:
                per_method[m][key] = value
    config = MultiConfig(
        backbone_config=backbone_config,
        methods=methods,
        weights=list(parsed.weights),
        method_configs={m: f for m, f in per_method.items() if f},
    )
    return MultiPretextForPretraining(config)


def _create_single(
    name: str,
    weight: float | None,
    backbone_config: HfsslConfig | dict[str, Any],
    overrides: dict[str, Any],
) -> PretextModel:
    from hfssl.pretext.multi import check_method_fields

    if weight is None:
        raise ConfigError(
            f"a learned loss weight needs two or more methods, got only {name!r}",
            "drop ':learned', or combine methods, e.g. rot:learned+simclr:learned",
        )
    cls = get_pretext_class(name)
    # the combination spellings work for one method too: ``rot={...}`` and ``rot.head_depth=2``
    fields = dict(overrides)
    nested = fields.pop(name, None)
    if isinstance(nested, dict):
        fields.update(nested)
    elif nested is not None:
        fields[name] = nested  # not a dict: reported as an unknown setting below
    fields = {k.removeprefix(f"{name}."): v for k, v in fields.items()}
    if weight != 1.0:
        fields.setdefault("loss_weight", weight)
    check_method_fields(name, cls.config_class, fields)
    return cls(cls.config_class(backbone_config=backbone_config, **fields))
