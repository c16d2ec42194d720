"""3D backbones: the paper's 3D U-Net encoder and a 3D ResNet-18.

Written here rather than taken from MONAI (``monai.networks.nets.ResNet`` and ``BasicUNet``
would fit): both networks are a few conv-norm-ReLU stacks, and importing
``monai.networks.nets`` costs ~8 s (it pulls in torchvision and every MONAI network) for every
process that builds a 3D model, plus a heavy pinned dependency for the whole project. Module
names follow timm's 2D ResNet (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``downsample.0/1``) so
the 2D and 3D checkpoints read alike.

Both take any cube size their down-sampling allows (>= 8 voxels for the U-Net encoder, >= 1
for the small-stem ResNet), so pretext tasks can feed 9^3 or 14^3 sub-cubes of a 28^3 volume.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hfssl.errors import ConfigError
from hfssl.models.backbones import SMALL_STEM_MAX_SIZE, BackboneSpec
from hfssl.models.layers import init_module_weights, make_norm

UNET3D_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)
RESNET18_3D_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
_ALLOWED_KWARGS = {"unet3d_encoder": {"channels", "norm"}, "resnet18_3d": {"norm"}}
_NORMS = ("batch", "instance", "group")


def _check_kwargs(backbone: str, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - _ALLOWED_KWARGS[backbone])
    if unknown:
        raise ConfigError(
            f"backbone_kwargs {unknown} are not options of {backbone}",
            f"allowed: {', '.join(sorted(_ALLOWED_KWARGS[backbone]))}",
        )
    if kwargs.get("norm", "batch") not in _NORMS:
        raise ConfigError(
            f"norm must be one of {_NORMS}, got {kwargs['norm']!r}", "e.g. backbone_kwargs={'norm': 'batch'}"
        )
    channels = kwargs.get("channels")
    if channels is not None and (len(channels) != 4 or any(int(c) < 1 for c in channels)):
        raise ConfigError(f"channels must be 4 positive ints, got {channels}", "e.g. [64, 128, 256, 512]")


def describe_backbone_3d(
    backbone: str, in_chans: int, image_size: int, kwargs: dict[str, Any], small_input_stem: bool | None
) -> BackboneSpec:
    """Feature dim / channels / reductions of a 3D backbone (computed, nothing is built)."""
    _check_kwargs(backbone, kwargs)
    if backbone == "unet3d_encoder":
        if small_input_stem:
            raise ConfigError("small_input_stem applies to ResNets only", "leave it unset for unet3d_encoder")
        channels = tuple(int(c) for c in kwargs.get("channels", UNET3D_CHANNELS))
        return BackboneSpec(channels[-1], channels, (1, 2, 4, 8), (0, 1, 2, 3), False)
    stem = image_size <= SMALL_STEM_MAX_SIZE if small_input_stem is None else bool(small_input_stem)
    channels = (RESNET18_3D_WIDTHS[0], *RESNET18_3D_WIDTHS)
    reductions = (1, 1, 2, 4, 8) if stem else (2, 4, 8, 16, 32)
    return BackboneSpec(RESNET18_3D_WIDTHS[-1], channels, reductions, (0, 1, 2, 3, 4), stem)


class ConvNormAct3d(nn.Sequential):
    """3x3x3 conv (no bias) -> norm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__(
            nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            make_norm(norm, out_channels, spatial_dims=3),
            nn.ReLU(inplace=True),
        )


class UNet3DEncoder(nn.Module):
    """The paper's 3D U-Net encoder: 4 blocks (two 3x3x3 conv-norm-ReLU), max-pool 2 in between.

    Feature maps at strides 1, 2, 4, 8 with ``channels`` (64/128/256/512) channels; the pooled
    embedding is the global average of the deepest map.
    """

    def __init__(
        self, in_chans: int = 1, channels: tuple[int, ...] = UNET3D_CHANNELS, norm: str = "batch"
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        prev = in_chans
        for c in channels:
            self.blocks.append(nn.Sequential(ConvNormAct3d(prev, c, norm), ConvNormAct3d(c, c, norm)))
            prev = c
        self.pool = nn.MaxPool3d(kernel_size=2)
        self.num_features = int(channels[-1])
        self.apply(init_module_weights)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Pooled embedding and the 4 feature maps, shallow to deep."""
        maps = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = self.pool(x)
            x = block(x)
            maps.append(x)
        return x.mean(dim=(2, 3, 4)), maps


class BasicBlock3d(nn.Module):
    """ResNet basic block in 3D (two 3x3x3 convs, identity or 1x1x1 projection shortcut)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, norm: str = "batch") -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, out_channels, spatial_dims=3)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = make_norm(norm, out_channels, spatial_dims=3)
        self.bn2.zero_init = (
            True  # branch starts as identity (timm's zero_init_last); see init_module_weights
        )
        self.act2 = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                make_norm(norm, out_channels, spatial_dims=3),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return self.act2(x + shortcut)


class ResNet3d(nn.Module):
    """3D ResNet-18 (basic blocks, 2-2-2-2). ``small_input_stem``: 3x3x3 stride-1 conv, no max-pool.

    Feature maps: stem output and the 4 stages (strides 2/4/8/16/32, or 1/1/2/4/8 with the small
    stem), as timm's 2D ResNet gives them.
    """

    def __init__(
        self,
        in_chans: int = 1,
        widths: tuple[int, ...] = RESNET18_3D_WIDTHS,
        layers: tuple[int, ...] = (2, 2, 2, 2),
        small_input_stem: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if small_input_stem:
            self.conv1 = nn.Conv3d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv3d(in_chans, widths[0], 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.bn1 = make_norm(norm, widths[0], spatial_dims=3)
        self.act1 = nn.ReLU(inplace=True)
        prev = widths[0]
        for i, (width, depth) in enumerate(zip(widths, layers)):
            blocks = [BasicBlock3d(prev, width, stride=1 if i == 0 else 2, norm=norm)]
            blocks += [BasicBlock3d(width, width, norm=norm) for _ in range(depth - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            prev = width
        self.num_features = int(widths[-1])
        self.apply(init_module_weights)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Pooled embedding and the 5 feature maps (stem, layer1..4), shallow to deep."""
        x = self.act1(self.bn1(self.conv1(x)))
        maps = [x]
        x = self.maxpool(x)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            maps.append(x)
        return x.mean(dim=(2, 3, 4)), maps


def build_backbone_3d(config: Any) -> nn.Module:
    """Build the 3D backbone an ``HfsslConfig`` describes."""
    kwargs = dict(config.backbone_kwargs or {})
    norm = kwargs.get("norm", "batch")
    if config.backbone == "unet3d_encoder":
        channels = tuple(int(c) for c in kwargs.get("channels", UNET3D_CHANNELS))
        return UNet3DEncoder(config.in_chans, channels, norm)
    if config.backbone == "resnet18_3d":
        return ResNet3d(config.in_chans, small_input_stem=bool(config.small_input_stem), norm=norm)
    raise ConfigError(f"unknown 3D backbone {config.backbone!r}", "use unet3d_encoder or resnet18_3d")
