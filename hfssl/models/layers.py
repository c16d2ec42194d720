"""Small shared pieces of hfssl's own modules: norm factory and weight init.

``init_module_weights`` is the one init for every module hfssl writes itself (3D backbones,
U-Net decoder, heads): kaiming-normal convs (fan_out, ReLU, as timm/torchvision ResNets), unit
norms (zero scale for norms flagged ``zero_init``, the last of a residual branch, as timm's
``zero_init_last``), truncated-normal linears, Xavier for modules flagged ``is_output_head`` (the decoder's
last 1x1 conv). It uses transformers' guarded init functions, which leave a
parameter alone once ``from_pretrained`` has loaded it, so the same function serves as the
models' ``_init_weights`` (fresh modules only) and as a plain ``module.apply(...)`` init.
Pretext models that own an hfssl decoder or head can call it from their ``_init_weights``.
"""

from __future__ import annotations

from torch import nn
from transformers import initialization as init

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.GroupNorm,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
)


def make_norm(kind: str, channels: int, spatial_dims: int) -> nn.Module:
    """``"batch"`` / ``"instance"`` (affine) / ``"group"`` (8 groups, or fewer if channels are few)."""
    if kind == "batch":
        return (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}")


def init_module_weights(module: nn.Module) -> None:
    """Initialise one module's own parameters (not its children's); skips loaded parameters.

    Behaviour is decided per module (flags ``is_output_head`` / ``zero_init`` set at construction)
    because transformers' init visit skips modules without parameters of their own.
    """
    if getattr(module, "is_output_head", False):
        # last layer mapping features to classes/pixels: no ReLU follows, so Xavier (as
        # segmentation_models_pytorch's heads) rather than kaiming fan_out, which gives a 1x1
        # conv to 1 channel a std of 1.4
        init.xavier_uniform_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, _CONVS):
        init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, _NORMS):
        if getattr(module, "weight", None) is not None:
            # ``zero_init``: last norm of a residual branch starts at 0 (timm's zero_init_last)
            (init.zeros_ if getattr(module, "zero_init", False) else init.ones_)(module.weight)
        if getattr(module, "bias", None) is not None:
            init.zeros_(module.bias)
        if getattr(module, "running_mean", None) is not None:
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
