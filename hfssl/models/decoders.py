"""U-Net decoder shared by segmentation and by generative pretext tasks (AE, Models Genesis, PCRL).

Each stage resizes the running map to the next shallower encoder map's size (bilinear /
trilinear interpolation, so odd sizes such as 28 -> 14 -> 7 -> 4 px invert exactly),
concatenates that encoder map when ``skip_connections`` is on, and applies two 3x3
conv-norm-ReLU. Without skips the stages see only the upsampled path, which is what the paper's
architecture study compares. A 1x1 conv maps to ``out_channels``; the result is resized to
``output_size`` (the input's size) when given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import ConfigError
from hfssl.models.layers import init_module_weights, make_norm


class ConvNormAct(nn.Sequential):
    """3x3 (x3) conv without bias -> norm -> ReLU, in 2D or 3D."""

    def __init__(
        self, in_channels: int, out_channels: int, spatial_dims: int = 2, norm: str = "batch"
    ) -> None:
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        super().__init__(
            conv(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            make_norm(norm, out_channels, spatial_dims),
            nn.ReLU(inplace=True),
        )


class UNetDecoder(nn.Module):
    """U-Net decoder over encoder feature maps (shallow to deep), with or without skips.

    Args:
        encoder_channels: channels of the encoder's feature maps, shallow to deep (e.g.
            ``HfsslModel.feature_channels``). The decoder uses the deepest
            ``len(decoder_channels) + 1`` of them.
        decoder_channels: width of each decoder stage, deep to shallow (paper: 256, 128, 64).
        out_channels: channels of the output (classes, or image channels for reconstruction).
        spatial_dims: 2 or 3.
        skip_connections: concatenate the encoder maps (U-Net) or not (plain decoder).
        norm: ``"batch"``, ``"instance"`` or ``"group"``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int] = (256, 128, 64),
        out_channels: int = 1,
        spatial_dims: int = 2,
        skip_connections: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        n = len(decoder_channels)
        if spatial_dims not in (2, 3):
            raise ConfigError(f"spatial_dims must be 2 or 3, got {spatial_dims}", "use 2 or 3")
        if n < 1 or len(encoder_channels) < n + 1:
            raise ConfigError(
                f"a decoder with {n} stages needs at least {n + 1} encoder feature maps, got {len(encoder_channels)}",
                "use fewer decoder_channels or a backbone with more stages",
            )
        used = [int(c) for c in encoder_channels][-(n + 1) :]
        self.encoder_channels = used
        self.decoder_channels = [int(c) for c in decoder_channels]
        self.spatial_dims = spatial_dims
        self.skip_connections = skip_connections
        self._mode = "bilinear" if spatial_dims == 2 else "trilinear"
        self.blocks = nn.ModuleList()
        prev = used[-1]
        for skip_ch, ch in zip(reversed(used[:-1]), self.decoder_channels):
            in_ch = prev + (skip_ch if skip_connections else 0)
            self.blocks.append(
                nn.Sequential(
                    ConvNormAct(in_ch, ch, spatial_dims, norm), ConvNormAct(ch, ch, spatial_dims, norm)
                )
            )
            prev = ch
        self.head = (nn.Conv2d if spatial_dims == 2 else nn.Conv3d)(prev, out_channels, kernel_size=1)
        self.head.is_output_head = True  # read by init_module_weights
        self.apply(init_module_weights)

    def forward(
        self, features: Sequence[torch.Tensor], output_size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Decode ``features`` (shallow to deep, as ``HfsslModel`` returns them) to ``out_channels`` maps."""
        n = len(self.blocks)
        if len(features) < n + 1:
            raise ValueError(f"UNetDecoder needs {n + 1} feature maps, got {len(features)}")
        feats = list(features)[-(n + 1) :]
        x = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[:-1])):
            x = F.interpolate(x, size=skip.shape[2:], mode=self._mode, align_corners=False)
            if self.skip_connections:
                x = torch.cat([x, skip], dim=1)
            x = block(x)
        # 1x1 conv before the final resize: both are linear, so the order does not change the
        # result, and resizing out_channels maps is cheaper than resizing the last stage's.
        x = self.head(x)
        if output_size is not None and tuple(x.shape[2:]) != tuple(output_size):
            x = F.interpolate(x, size=tuple(output_size), mode=self._mode, align_corners=False)
        return x
