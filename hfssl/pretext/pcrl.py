"""PCRL: preservational contrastive representation learning (Zhou et al., ICCV 2021).

Contrastive learning with a momentum encoder, plus restoration of "diverse contexts":

* **Views.** Two overlapping random crops per image (IoU > 0.25, resized back to the input
  size), each corrupted by the Models Genesis chain without flips (local shuffling p .5,
  Bezier intensity p .9, in-/out-painting p .9).
* **Contrast.** The online encoder (``self.backbone``) + projector (FC 512 -> 128 -> 128)
  embeds view A, the momentum encoder (EMA of the online one) embeds view B; InfoNCE with a
  queue of momentum keys as negatives (MoCo style).
* **Transformation-conditioned restoration.** The restoration target of a view is its *clean*
  crop after a random spatial transformation (a flip of each axis with p .5, then a rotation by
  k x 90 degrees in the (H, W) plane). The transformation is encoded as a vector (one flip
  flag per axis + a one-hot of k: 6 numbers in 2D, 7 in 3D, as the reference's
  ``aug_tensor``); an MLP (FC 256 -> C, sigmoid) turns it into channel attention on the
  deepest feature map ("TCA"), and the U-Net decoder (``self.decoder``, sigmoid output)
  restores the transformed clean view from the attended maps. The decoder must therefore
  follow the vector: the same features give differently transformed images.
* **Hybrid.** The online maps of view A and the momentum maps of view B (each with its own
  TCA) are mixed with ``alpha = max(u, 1 - u)``, ``u ~ U(0, 1)``, and decoded to the equally
  mixed targets (the reference's cross-model mixup of features).

``loss = contrastive_weight * InfoNCE + restoration_weight * (MSE + hybrid MSE) / 2``.

Kept simple with respect to the reference code: the extra in-batch *input* mixup branch (two
more InfoNCE terms and two more restorations per step) and ShuffleBN (a multi-GPU BatchNorm
trick) are left out. The exported backbone is the online encoder (``which="target"`` gives
the momentum one); call :meth:`PCRLForPretraining.after_optimizer_step` after each optimiser
step for the EMA update (the trainer does).
"""

from typing import Any, NamedTuple

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextOutput
from hfssl.pretext.blocks import (
    GenesisConfig,
    MemoryQueue,
    MLPHead,
    MomentumCopiesMixin,
    _rng,
    frozen_copy,
    info_nce,
    models_genesis_transform,
    overlapping_crop_pairs,
    rotate_2d,
    rotate_3d,
)
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import GenerativeConfig, RestorationModel, mean_image_mse

NUM_TARGET_ROTATIONS = 4  # k x 90 degrees in the (H, W) plane


@strict
class PCRLConfig(GenerativeConfig):
    r"""Configuration of PCRL (defaults follow the reference implementation).

    Args:
        projection_dim (`int`, defaults to 128): output of the projector (512 -> 128).
        projection_hidden_dim (`int`, defaults to 128): its hidden layer (FC-ReLU-FC).
        temperature (`float`, defaults to 0.2): InfoNCE temperature.
        queue_size (`int`, defaults to 16384): number of momentum keys kept as negatives.
        momentum (`float`, defaults to 0.999): EMA momentum of the momentum encoder.
        crop_min_scale (`float`, defaults to 0.5): smallest crop side as a fraction of the image.
        crop_iou_threshold (`float`, defaults to 0.25): minimum IoU of the two crops.
        local_rate / nonlinear_rate / paint_rate / outpaint_rate (`float`): Models Genesis
            corruption of the inputs (0.5 / 0.9 / 0.9 / 0.8).
        flip_prob (`float`, defaults to 0.5): per-axis flip probability of the restoration target.
        rotate_target (`bool`, defaults to `True`): also rotate the target by k x 90 degrees.
        tca_hidden_dim (`int`, defaults to 256): hidden width of the transformation-conditioned
            attention MLP.
        hybrid (`bool`, defaults to `True`): add the mixed online/momentum feature restoration.
        contrastive_weight / restoration_weight (`float`, default 1.0): loss weights.
        skip_connections (`bool`, defaults to `True`): U-Net skips in the decoder.
        decoder_channels (`list[int]`, *optional*): decoder widths (default: the backbone's).
    """

    model_type = "hfssl_pcrl"

    projection_dim: int = 128
    projection_hidden_dim: int = 128
    temperature: float = 0.2
    queue_size: int = 16384
    momentum: float = 0.999
    crop_min_scale: float = 0.5
    crop_iou_threshold: float = 0.25
    local_rate: float = 0.5
    nonlinear_rate: float = 0.9
    paint_rate: float = 0.9
    outpaint_rate: float = 0.8
    flip_prob: float = 0.5
    rotate_target: bool = True
    tca_hidden_dim: int = 256
    hybrid: bool = True
    contrastive_weight: float = 1.0
    restoration_weight: float = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("projection_dim", "projection_hidden_dim", "queue_size", "tca_hidden_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", "use a positive size")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}", "use e.g. 0.2")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"momentum must be in [0, 1], got {self.momentum}", "use e.g. 0.999")
        if not 0.0 < self.crop_min_scale <= 1.0:
            raise ConfigError(f"crop_min_scale must be in (0, 1], got {self.crop_min_scale}", "use e.g. 0.5")
        if not 0.0 <= self.crop_iou_threshold < 1.0:
            raise ConfigError(
                f"crop_iou_threshold must be in [0, 1), got {self.crop_iou_threshold}", "use e.g. 0.25"
            )
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ConfigError(f"flip_prob must be in [0, 1], got {self.flip_prob}", "use a probability")
        for name in ("contrastive_weight", "restoration_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}", "use e.g. 1.0")
        if self.contrastive_weight == 0 and self.restoration_weight == 0:
            raise ConfigError(
                "contrastive_weight and restoration_weight are both 0", "give at least one a positive weight"
            )
        self.genesis_config()  # validates the corruption probabilities
        super().__post_init__(**kwargs)

    def genesis_config(self) -> GenesisConfig:
        """Models Genesis corruption of the inputs; no flips (spatial changes belong to the target)."""
        return GenesisConfig(
            flip_rate=0.0,
            local_rate=self.local_rate,
            nonlinear_rate=self.nonlinear_rate,
            paint_rate=self.paint_rate,
            outpaint_rate=self.outpaint_rate,
        )


class PCRLViews(NamedTuple):
    """Inputs, restoration targets and transformation vectors of the two views."""

    input_a: torch.Tensor
    input_b: torch.Tensor
    target_a: torch.Tensor
    target_b: torch.Tensor
    condition_a: torch.Tensor
    condition_b: torch.Tensor


@register_pretext("pcrl")
class PCRLForPretraining(MomentumCopiesMixin, RestorationModel):
    """PCRL: momentum contrast + transformation-conditioned and hybrid restoration."""

    config_class = PCRLConfig
    momentum_copies = ("momentum_backbone", "momentum_projector")

    def __init__(self, config: PCRLConfig) -> None:
        super().__init__(config)
        self.decoder = self._build_decoder()
        self.projector = MLPHead(
            self.backbone.num_features,
            config.projection_hidden_dim,
            config.projection_dim,
            num_layers=2,
            batch_norm=False,
        )
        self.condition_dim = self.spatial_dims + NUM_TARGET_ROTATIONS
        # transformation-conditioned attention: vector -> FC-ReLU-FC -> sigmoid channel weights
        self.tca = MLPHead(
            self.condition_dim,
            config.tca_hidden_dim,
            self.backbone.feature_channels[-1],
            num_layers=2,
            batch_norm=False,
        )
        self.queue = MemoryQueue(config.queue_size, config.projection_dim)
        self.genesis = config.genesis_config()
        self.post_init()
        # Momentum copies are made after post_init so that they start equal to the initialised
        # online modules (the reference copies with momentum 0 before training).
        self.momentum_backbone = frozen_copy(self.backbone)
        self.momentum_projector = frozen_copy(self.projector)

    def _init_weights(self, module: nn.Module) -> None:
        # (the momentum copies are skipped by MomentumCopiesMixin._init_weights, via super())
        tca = getattr(self, "tca", None)
        if isinstance(module, nn.Linear) and tca is not None and any(module is m for m in tca.modules()):
            # PyTorch's default init, as the reference: hfssl's std-0.02 head init leaves the
            # attention at ~0.5 for every vector, so the decoder would learn to ignore it
            module.reset_parameters()
            return
        super()._init_weights(module)

    # ------------------------------------------------------------------ momentum encoder
    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """EMA update of the momentum encoder and projector (call after each optimiser step)."""
        self._update_momentum_copies(self.config.momentum)

    @torch.no_grad()
    def reset_momentum_encoder(self) -> None:
        """Make the momentum encoder and projector exact copies of the online ones.

        Needed after ``self.backbone`` is replaced (e.g. multi-SSL re-pointing it to a shared
        backbone), so that the momentum encoder tracks the new online weights.
        """
        self._update_momentum_copies(0.0, copy_buffers=True)

    # ------------------------------------------------------------------ views
    def transform_target(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Randomly flip (each axis) then rotate ``x`` in the (H, W) plane; return it and the vector.

        The vector is ``[flip of each spatial axis..., one-hot(k)]`` with ``k`` quarter turns.
        """
        b, dims = x.shape[0], x.dim() - 2
        flips = _rng.bernoulli(self.config.flip_prob, (b, dims), generator, x.device)
        shape = (b,) + (1,) * (x.dim() - 1)
        for d in range(dims):
            x = torch.where(flips[:, d].view(shape), x.flip(2 + d), x)
        if self.config.rotate_target:
            k = _rng.randint(0, NUM_TARGET_ROTATIONS - 1, (b,), generator, x.device)
            # ROTATIONS_3D[1..3] are 1..3 quarter turns about D, i.e. in the (H, W) plane
            x = rotate_2d(x, k) if dims == 2 else rotate_3d(x, k)
        else:
            k = torch.zeros(b, dtype=torch.long, device=x.device)
        condition = torch.cat([flips.to(x.dtype), F.one_hot(k, NUM_TARGET_ROTATIONS).to(x.dtype)], dim=1)
        return x, condition

    def make_views(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> PCRLViews:
        """Two overlapping crops, corrupted (inputs) and spatially transformed (targets)."""
        cfg = self.config
        pair = overlapping_crop_pairs(
            pixel_values,
            tuple(pixel_values.shape[2:]),
            iou_threshold=cfg.crop_iou_threshold,
            scale=(cfg.crop_min_scale, 1.0),
            generator=generator,
        )
        input_a, clean_a = models_genesis_transform(pair.view_a, self.genesis, generator)
        input_b, clean_b = models_genesis_transform(pair.view_b, self.genesis, generator)
        target_a, condition_a = self.transform_target(clean_a, generator)
        target_b, condition_b = self.transform_target(clean_b, generator)
        return PCRLViews(input_a, input_b, target_a, target_b, condition_a, condition_b)

    # ------------------------------------------------------------------ forward
    def condition_features(
        self, maps: tuple[torch.Tensor, ...], condition: torch.Tensor
    ) -> list[torch.Tensor]:
        """Feature maps with the deepest one scaled by the transformation-conditioned attention (TCA)."""
        deepest = maps[-1]
        weights = torch.sigmoid(self.tca(condition)).view(*deepest.shape[:2], *([1] * (deepest.dim() - 2)))
        return [*maps[:-1], deepest * weights]

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        cfg = self.config
        views = self.make_views(pixel_values, generator)
        size = pixel_values.shape[2:]

        embeddings, maps_a = self.backbone.forward_features(views.input_a)
        q = self.projector(embeddings)
        with torch.no_grad():
            pooled_b, maps_b = self.momentum_backbone.forward_features(views.input_b)
            k = self.momentum_projector(pooled_b)
        contrastive, stats = info_nce(q, k, self.queue.features, cfg.temperature, return_stats=True)
        if self.training:
            self.queue.enqueue(k)

        attended_a = self.condition_features(maps_a, views.condition_a)
        reconstruction = self.restore(attended_a, size)
        mse = F.mse_loss(reconstruction, views.target_a)
        metrics = {
            "contrastive_loss": contrastive.detach(),
            "mse": mse.detach(),
            "mean_image_mse": mean_image_mse(views.target_a),
        }
        restoration = mse
        if cfg.hybrid:
            u = float(_rng.rand((), generator))
            alpha = max(u, 1.0 - u)
            attended_b = self.condition_features(maps_b, views.condition_b)
            mixed = [alpha * fa + (1.0 - alpha) * fb for fa, fb in zip(attended_a, attended_b)]
            hybrid = F.mse_loss(
                self.restore(mixed, size), alpha * views.target_a + (1.0 - alpha) * views.target_b
            )
            restoration = (mse + hybrid) / 2
            metrics["hybrid_mse"] = hybrid.detach()
        loss = cfg.contrastive_weight * contrastive + cfg.restoration_weight * restoration

        with torch.no_grad():
            # monitoring against the other images of the batch (unlike the queue's, comparable
            # across training): mean similarities, InfoNCE and top-1 of each query among the keys
            sim = F.normalize(q.float(), dim=1) @ F.normalize(k.float(), dim=1).T
            labels = torch.arange(sim.shape[0], device=sim.device)
            off_diag = sim[labels[:, None] != labels[None, :]]
            metrics["pos_sim"] = stats.pos_sim
            metrics["neg_sim"] = stats.neg_sim
            metrics["batch_neg_sim"] = off_diag.mean() if off_diag.numel() else sim.new_zeros(())
            metrics["batch_contrastive_loss"] = F.cross_entropy(sim / cfg.temperature, labels)
            metrics["batch_accuracy"] = (sim.argmax(dim=1) == labels).float().mean()
        out = PretextOutput(
            loss=loss,
            embeddings=embeddings,
            reconstruction=reconstruction,
            target=views.target_a,
            metrics=metrics,
        )
        return out if return_dict is not False else out.to_tuple()
