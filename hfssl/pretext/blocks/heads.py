"""MLP heads shared by the pretext methods.

* SimCLR / PCRL projector: ``MLPHead(512, 512, 256)`` (BN + ReLU hidden layer).
* MoCo v2 projector: ``MLPHead(d, d, 128, batch_norm=False)``.
* BYOL projector and predictor: ``MLPHead(d, 4096, 256)`` and ``MLPHead(256, 4096, 256)``.
* Classification heads of RPL / ROT / Jigsaw / RKB, "FC 1024 -> classes":
  :func:`classification_head` with ``depth`` hidden FC-1024 layers (1 = shallow).

The layers are plain ``torch.nn`` blocks written out here rather than ``timm.layers.Mlp``
because timm's Mlp is fixed at two layers and has no per-layer BatchNorm/last-BN switches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from hfssl.errors import ConfigError


class MLPHead(nn.Sequential):
    """``num_layers`` Linear layers; every hidden one is followed by [BN] + ReLU [+ dropout].

    Args:
        in_dim: input features.
        hidden_dim: width of the hidden layers.
        out_dim: output features.
        num_layers: number of Linear layers in total (1 = a single linear map).
        batch_norm: BatchNorm1d after each hidden Linear (its bias is then dropped).
        last_bn: affine-free BatchNorm1d after the last Linear (SimCLR v2 / MoCo v3 style).
        dropout: dropout probability after each hidden activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        batch_norm: bool = True,
        last_bn: bool = False,
        dropout: float = 0.0,
    ) -> None:
        if num_layers < 1:
            raise ConfigError(
                f"num_layers must be >= 1, got {num_layers}", "use 1 for a linear head, 2+ for an MLP"
            )
        if min(in_dim, hidden_dim, out_dim) < 1:
            raise ConfigError(
                f"head dimensions must be positive, got in={in_dim} hidden={hidden_dim} out={out_dim}",
                "check the backbone's feature dimension and the head sizes in the config",
            )
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim, bias=not last_bn))
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        super().__init__(*layers)
        self.in_dim, self.hidden_dim, self.out_dim, self.num_layers = in_dim, hidden_dim, out_dim, num_layers


def classification_head(
    in_dim: int,
    num_classes: int,
    depth: int = 1,
    hidden_dim: int = 1024,
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> MLPHead:
    """Pretext classifier "FC ``hidden_dim`` x ``depth`` -> ``num_classes``".

    ``depth`` counts hidden FC layers: 0 = linear, 1 = shallow (the RKB default), 2 = the
    Jigsaw head FC 1024-1024-#perm, more = deep.
    """
    if depth < 0:
        raise ConfigError(
            f"head depth must be >= 0, got {depth}", "use 1 for a shallow head, 2+ for a deep one"
        )
    return MLPHead(
        in_dim, hidden_dim, num_classes, num_layers=depth + 1, batch_norm=batch_norm, dropout=dropout
    )


def encode_tiles(encode: Callable[[torch.Tensor], torch.Tensor], tiles: torch.Tensor) -> torch.Tensor:
    """Run a shared (weight-sharing, "siamese") encoder over every tile in one batched call.

    ``tiles`` is ``(B, T, C, *spatial)``; ``encode`` maps ``(N, C, *spatial) -> (N, D)``.
    Returns ``(B, T, D)``; use ``.flatten(1)`` for the concatenated embedding of RPL/Jigsaw/RKB.
    """
    if tiles.dim() < 4:
        raise ValueError(f"tiles must be (B, T, C, *spatial), got shape {tuple(tiles.shape)}")
    b, t = tiles.shape[:2]
    feats = encode(tiles.flatten(0, 1))
    return feats.reshape(b, t, -1)
