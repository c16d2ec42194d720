"""MAE, masked auto-encoder (He et al., CVPR 2022), for ViT backbones.

The image is cut into the ViT's patches; a random ``mask_ratio`` (0.75) of them is removed per
image and the backbone ViT (``self.backbone``, timm's ``VisionTransformer`` with its own patch
embedding, positional embedding, prefix tokens, blocks and norm) encodes only the visible
ones. A light transformer decoder (``self.decoder``: linear embed, mask tokens, fixed 2D
sin-cos positions, ``decoder_depth`` timm ``Block`` s, linear prediction of each patch's pixels)
reconstructs every patch; the loss is the MSE on the **masked** patches only. With
``norm_pix_loss`` each target patch is normalised by its own mean and variance (the paper's
better setting; off by default, as in the reference code, so that reconstructions are images).

Needs a ViT: ``HfsslConfig(backbone="vit_tiny_patch16_224", image_size=28,
backbone_kwargs={"patch_size": 4})`` for example; 2D only.
"""

from typing import Any, ClassVar

import torch
from huggingface_hub.dataclasses import strict
from torch import nn

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput
from hfssl.pretext.blocks import patchify, random_masking, restore_tokens, unpatchify
from hfssl.pretext.registry import register_pretext


@strict
class MAEConfig(PretextConfig):
    r"""Configuration of MAE (defaults: the reference's ViT-B recipe; use a lighter decoder for small ViTs).

    Args:
        mask_ratio (`float`, defaults to 0.75): fraction of patches removed per image.
        decoder_dim (`int`, defaults to 512): width of the decoder.
        decoder_depth (`int`, defaults to 8): transformer blocks of the decoder.
        decoder_num_heads (`int`, defaults to 16): attention heads of the decoder.
        decoder_mlp_ratio (`float`, defaults to 4.0): MLP width of the decoder blocks.
        norm_pix_loss (`bool`, defaults to `False`): normalise each target patch (mean 0, var 1).
    """

    model_type = "hfssl_mae"
    supported_dims: ClassVar[tuple[int, ...]] = (2,)
    backbone_family: ClassVar[str] = "vit"

    mask_ratio: float = 0.75
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    decoder_mlp_ratio: float = 4.0
    norm_pix_loss: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}", "MAE uses 0.75")
        for name in ("decoder_dim", "decoder_depth", "decoder_num_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", "use a positive size")
        if self.decoder_dim % self.decoder_num_heads:
            raise ConfigError(
                f"decoder_dim {self.decoder_dim} is not divisible by decoder_num_heads {self.decoder_num_heads}",
                "pick a head count that divides the decoder width (e.g. 128 and 4)",
            )
        if self.decoder_dim % 4:
            raise ConfigError(
                f"decoder_dim must be a multiple of 4 for 2D sin-cos positions, got {self.decoder_dim}",
                "use e.g. 128, 256 or 512",
            )
        if not self.decoder_mlp_ratio > 0:
            raise ConfigError(f"decoder_mlp_ratio must be > 0, got {self.decoder_mlp_ratio}", "use e.g. 4.0")
        super().__post_init__(**kwargs)


def sincos_positions(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """Fixed 2D sin-cos positional embedding ``(grid_h * grid_w, dim)`` in row-major patch order."""
    from timm.layers import build_sincos2d_pos_embed

    # timm's helper with ij indexing: row-major over (h, w), like the patch tokens
    return build_sincos2d_pos_embed(list(grid), dim=dim, reverse_coord=False).float()


class MAEDecoder(nn.Module):
    """MAE's light decoder: embed visible tokens, add mask tokens, transformer blocks, predict pixels."""

    def __init__(
        self,
        encoder_dim: int,
        decoder_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        patch_pixels: int,
        grid: tuple[int, int],
    ) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.embed = nn.Linear(encoder_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        self.blocks = nn.Sequential(
            *(Block(decoder_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(decoder_dim)
        self.pred = nn.Linear(decoder_dim, patch_pixels)
        self.grid = tuple(grid)
        # fixed (not learned) positions, saved with the weights so a checkpoint is self-contained
        self.register_buffer("pos_embed", sincos_positions(self.grid, decoder_dim))

    def _init_mask_token(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self, encoded: torch.Tensor, ids_restore: torch.Tensor, num_prefix: int, grid: tuple[int, int]
    ) -> torch.Tensor:
        """``encoded`` ``(B, prefix + visible, D)`` -> per-patch pixel predictions ``(B, L, patch_pixels)``."""
        x = self.embed(encoded)
        prefix, visible = x[:, :num_prefix], x[:, num_prefix:]
        tokens = restore_tokens(visible, self.mask_token, ids_restore)
        pos = self.pos_embed if tuple(grid) == self.grid else sincos_positions(grid, x.shape[-1])
        tokens = tokens + pos.to(tokens.dtype).unsqueeze(0)
        x = self.norm(self.blocks(torch.cat([prefix, tokens], dim=1)))
        return self.pred(x[:, num_prefix:])


@register_pretext("mae")
class MAEForPretraining(PretextModel):
    """MAE on the backbone's timm ViT: encode visible patches, decode and predict the masked ones."""

    config_class = MAEConfig

    def __init__(self, config: MAEConfig) -> None:
        super().__init__(config)
        from timm.models.vision_transformer import VisionTransformer

        vit = self.backbone.backbone
        if not isinstance(vit, VisionTransformer):
            raise ConfigError(
                f"MAE needs a timm VisionTransformer backbone, got {type(vit).__name__} ({self.backbone.config.backbone})",
                "use a vit_* or deit_* backbone, e.g. vit_tiny_patch16_224 with backbone_kwargs patch_size=4",
            )
        self.patch_size = tuple(int(p) for p in vit.patch_embed.patch_size)
        grid = tuple(int(g) for g in vit.patch_embed.grid_size)
        self.decoder = MAEDecoder(
            vit.embed_dim,
            config.decoder_dim,
            config.decoder_depth,
            config.decoder_num_heads,
            config.decoder_mlp_ratio,
            patch_pixels=self.patch_size[0] * self.patch_size[1] * config.in_chans,
            grid=grid,
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, MAEDecoder):
            module._init_mask_token()

    # ------------------------------------------------------------------ parts
    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, L, p * p * C)`` pixel targets in the ViT's patch order."""
        return patchify(pixel_values, self.patch_size)

    def encode(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Encode a random visible subset of patches.

        Returns ``(encoded (B, prefix + visible, D), mask (B, L) with 1 = removed, ids_restore,
        patch grid)``.
        """
        vit = self.backbone.backbone
        self.backbone._check_input(pixel_values)
        tokens = vit.patch_embed(pixel_values)
        if tokens.dim() == 4:  # dynamic image size: (B, H', W', D)
            grid = (int(tokens.shape[1]), int(tokens.shape[2]))
        else:
            grid = tuple(int(g) for g in vit.patch_embed.grid_size)
        tokens = vit._pos_embed(tokens)  # prefix tokens + positions, resampled to the grid if needed
        num_prefix = vit.num_prefix_tokens
        prefix, patches = tokens[:, :num_prefix], tokens[:, num_prefix:]
        visible, mask, ids_restore = random_masking(patches, self.config.mask_ratio, generator)
        x = vit.norm_pre(torch.cat([prefix, visible], dim=1))
        x = vit.norm(vit.blocks(x))
        return x, mask, ids_restore, grid

    def targets(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Per-patch targets: pixels, normalised per patch when ``norm_pix_loss``."""
        target = self.patchify(pixel_values)
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        vit = self.backbone.backbone
        encoded, mask, ids_restore, grid = self.encode(pixel_values, generator)
        pred = self.decoder(encoded, ids_restore, vit.num_prefix_tokens, grid)
        target = self.targets(pixel_values)
        per_patch = (pred - target).pow(2).mean(dim=-1)
        loss = (per_patch * mask).sum() / mask.sum()
        with torch.no_grad():
            # baseline: predict every masked patch as the batch's mean target patch at that position
            mean_pred = target.mean(dim=0, keepdim=True)
            baseline = ((mean_pred - target).pow(2).mean(dim=-1) * mask).sum() / mask.sum()
        size = pixel_values.shape[2:]
        reconstruction = unpatchify(pred.detach(), self.patch_size, size)
        # the target in the space the loss is computed in (normalised patches with norm_pix_loss)
        target_image = (
            unpatchify(target, self.patch_size, size) if self.config.norm_pix_loss else pixel_values
        )
        embeddings = vit.forward_head(encoded, pre_logits=True)
        out = PretextOutput(
            loss=loss,
            embeddings=embeddings,
            reconstruction=reconstruction,
            target=target_image,
            metrics={"mse": loss.detach(), "mean_image_mse": baseline, "mask_ratio": mask.mean()},
        )
        return out if return_dict is not False else out.to_tuple()
