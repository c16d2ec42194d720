"""DINO (Caron et al., ICCV 2021): self-distillation with no labels, student vs. EMA teacher.

The student (``self.backbone`` -> ``projector``, a :class:`~hfssl.pretext.blocks.DINOHead`)
sees every crop: 2 global crops (the views of :class:`~hfssl.pretext.shared.ContrastiveConfig`
at the input size: 2D random resized crops of area ``crop_min_area``..1, 3D overlapping crops)
and ``num_local_crops`` small local crops (random resized crops of area ``local_crop_scale``,
resized to ``local_crop_size``, with the same flips / rot90 / blur / noise). The teacher
(``teacher_backbone`` -> ``teacher_head``, an EMA of the student, no gradient) sees only the
global crops. The loss is the cross-entropy between the teacher's distribution of each global
crop, centred and sharpened (``softmax((t - centre) / teacher_temperature)``), and the
student's distribution (``softmax(s / student_temperature)``) of every other crop
(:func:`~hfssl.pretext.blocks.dino_loss`). Centring (running mean of the teacher's outputs,
momentum ``centre_momentum`` 0.9, averaged over processes) and sharpening together prevent
collapse.

Schedules, driven by the optimiser-step counter ``ema_steps`` (a buffer, so a resumed run
continues): the teacher momentum rises from ``momentum`` (0.996) to ``momentum_final`` (1.0) on
BYOL's cosine over ``momentum_total_steps`` (the trainer sets it to the whole run); the teacher
temperature warms up linearly from ``teacher_temperature_start`` (0.04) to
``teacher_temperature`` (0.07) over the first ``teacher_temperature_warmup`` fraction (0.1) of
``momentum_total_steps`` (no warm-up when that is unset). Call
:meth:`DINOForPretraining.after_optimizer_step` after each optimiser step (the trainer does).

Exported backbone: the **teacher** by default (``export_backbone()`` / ``--export-backbone
auto``): DINO's teacher is an ensemble of recent students (Polyak averaging) and gives better
features than the student throughout training (Caron et al., section 5.2), so it is the encoder
the paper evaluates. ``--export-backbone online`` (``which="online"``) gives the student.

Sizes for 28-64 px medical images: the head is 1024 wide with a 256 bottleneck and ``out_dim``
2048 prototypes (the paper's 65536 is for ImageNet's 1.2M images; a few thousand images need far
fewer), 4 local crops of half the image side. Local crops need a backbone that takes a smaller
input than ``image_size`` (CNNs do; a fixed-size ViT does not: use ``num_local_crops=0``).
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextModel, PretextOutput
from hfssl.pretext.blocks import (
    DINOHead,
    MomentumCopiesMixin,
    centre_update,
    cosine_momentum_schedule,
    dino_cross_entropy,
    frozen_copy,
    teacher_distribution,
)
from hfssl.pretext.registry import register_pretext
from hfssl.pretext.shared import (
    ContrastiveConfig,
    ContrastiveViewsMixin,
    cpu_generator,
    pair_similarity_metrics,
)


@strict
class DINOConfig(ContrastiveConfig):
    r"""Configuration of DINO (plus the view settings of :class:`ContrastiveConfig`, which make the
    two global crops; ``crop_min_area`` defaults to DINO's 0.4 here).

    Args:
        num_local_crops (`int`, defaults to 4): local crops per image (paper: 6-10); 0 = two crops only.
        local_crop_size (`int`, *optional*): side of the local crops; ``None`` = half the image side.
        local_crop_scale (`list[float]`, defaults to `(0.05, 0.4)`): area (volume) fraction range
            of a local crop.
        out_dim (`int`, defaults to 2048): prototypes of the DINO head (paper: 65536).
        head_hidden_dim (`int`, defaults to 1024): hidden width of the head's MLP (paper: 2048).
        head_bottleneck_dim (`int`, defaults to 256): bottleneck before the last layer (paper: 256).
        head_layers (`int`, defaults to 3): Linear layers of the head's MLP (paper: 3).
        student_temperature (`float`, defaults to 0.1).
        teacher_temperature (`float`, defaults to 0.07): teacher temperature after warm-up.
        teacher_temperature_start (`float`, defaults to 0.04): teacher temperature at step 0.
        teacher_temperature_warmup (`float`, defaults to 0.1): fraction of ``momentum_total_steps``
            over which the teacher temperature warms up (paper: 30 of 300 epochs).
        centre_momentum (`float`, defaults to 0.9): momentum of the teacher's running centre.
        momentum (`float`, defaults to 0.996): teacher EMA momentum at step 0.
        momentum_final (`float`, defaults to 1.0): teacher momentum at the end of the cosine schedule.
        momentum_total_steps (`int`, *optional*): optimiser steps of the schedules (the trainer sets
            the whole run); ``None`` keeps the momentum at ``momentum`` and skips the warm-up.
    """

    model_type = "hfssl_dino"

    crop_min_area: float = 0.4
    num_local_crops: int = 4
    local_crop_size: int | None = None
    local_crop_scale: list[float] | tuple[float, ...] = (0.05, 0.4)
    out_dim: int = 2048
    head_hidden_dim: int = 1024
    head_bottleneck_dim: int = 256
    head_layers: int = 3
    student_temperature: float = 0.1
    teacher_temperature: float = 0.07
    teacher_temperature_start: float = 0.04
    teacher_temperature_warmup: float = 0.1
    centre_momentum: float = 0.9
    momentum: float = 0.996
    momentum_final: float = 1.0
    momentum_total_steps: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.num_local_crops < 0:
            raise ConfigError(
                f"num_local_crops must be >= 0, got {self.num_local_crops}", "use e.g. 4 (0: none)"
            )
        for name in ("student_temperature", "teacher_temperature", "teacher_temperature_start"):
            if not getattr(self, name) > 0:
                raise ConfigError(
                    f"{name} must be > 0, got {getattr(self, name)}", "use e.g. 0.1 / 0.07 / 0.04"
                )
        if not 0.0 <= self.teacher_temperature_warmup <= 1.0:
            raise ConfigError(
                f"teacher_temperature_warmup must be a fraction in [0, 1], got {self.teacher_temperature_warmup}",
                "use e.g. 0.1",
            )
        if not 0.0 <= self.centre_momentum < 1.0:
            raise ConfigError(
                f"centre_momentum must be in [0, 1), got {self.centre_momentum}", "use e.g. 0.9"
            )
        if not 0.0 <= self.momentum <= self.momentum_final <= 1.0:
            raise ConfigError(
                f"need 0 <= momentum <= momentum_final <= 1, got {self.momentum} and {self.momentum_final}",
                "use e.g. momentum=0.996, momentum_final=1.0",
            )
        if self.momentum_total_steps is not None and self.momentum_total_steps < 1:
            raise ConfigError(
                f"momentum_total_steps must be >= 1, got {self.momentum_total_steps}",
                "give the number of optimiser steps, or None for a constant momentum",
            )
        for name in ("out_dim", "head_hidden_dim", "head_bottleneck_dim", "head_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}", "use a positive size")
        if (
            len(self.local_crop_scale) != 2
            or not 0 < self.local_crop_scale[0] <= self.local_crop_scale[1] <= 1
        ):
            raise ConfigError(
                f"local_crop_scale must be (low, high) with 0 < low <= high <= 1, got {self.local_crop_scale}",
                "use e.g. [0.05, 0.4]",
            )
        object.__setattr__(self, "local_crop_scale", [float(v) for v in self.local_crop_scale])
        super().__post_init__(**kwargs)
        size = self.resolved_local_crop_size()
        if not 1 <= size <= self.image_size:
            raise ConfigError(
                f"local_crop_size must be in [1, image_size={self.image_size}], got {size}",
                f"use e.g. {max(self.image_size // 2, 1)}",
            )

    def resolved_local_crop_size(self) -> int:
        """The local crops' side: ``local_crop_size``, else half the image side."""
        return self.local_crop_size if self.local_crop_size is not None else max(self.image_size // 2, 1)

    def local_view_maker(self):
        """The local crops' augmentation (:class:`hfssl.data.augment.ContrastiveViews`)."""
        return self.view_maker(size=self.resolved_local_crop_size(), crop_scale=tuple(self.local_crop_scale))


@register_pretext("dino")
class DINOForPretraining(MomentumCopiesMixin, ContrastiveViewsMixin, PretextModel):
    """DINO: student backbone + DINO head on all crops, EMA teacher on the global crops."""

    config_class = DINOConfig
    momentum_copies = ("teacher_backbone", "teacher_head")
    default_export = "target"  # the teacher (see the module docstring)

    ema_steps: torch.Tensor
    centre: torch.Tensor

    def __init__(self, config: DINOConfig) -> None:
        super().__init__(config)
        self.projector = DINOHead(
            self.backbone.num_features,
            config.out_dim,
            hidden_dim=config.head_hidden_dim,
            bottleneck_dim=config.head_bottleneck_dim,
            num_layers=config.head_layers,
        )
        self.view_maker = config.view_maker()
        self.local_view_maker = config.local_view_maker()
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("centre", torch.zeros(1, config.out_dim))
        self.post_init()
        # copies made after post_init so that they start equal to the initialised student
        self.teacher_backbone = frozen_copy(self.backbone)
        self.teacher_head = frozen_copy(self.projector)

    # ------------------------------------------------------------------ schedules
    @property
    def current_momentum(self) -> float:
        cfg = self.config
        if cfg.momentum_total_steps is None:
            return cfg.momentum
        return cosine_momentum_schedule(
            int(self.ema_steps), cfg.momentum_total_steps, cfg.momentum, cfg.momentum_final
        )

    @property
    def current_teacher_temperature(self) -> float:
        cfg = self.config
        warmup = (
            0
            if cfg.momentum_total_steps is None
            else round(cfg.teacher_temperature_warmup * cfg.momentum_total_steps)
        )
        step = int(self.ema_steps)
        if warmup <= 0 or step >= warmup:
            return cfg.teacher_temperature
        start = cfg.teacher_temperature_start
        return start + (cfg.teacher_temperature - start) * step / warmup

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """EMA update of the teacher backbone and head (call after each optimiser step)."""
        self._update_momentum_copies(self.current_momentum)
        self.ema_steps += 1

    # ------------------------------------------------------------------ views
    def make_crops(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The two global crops (input size) and ``num_local_crops`` local crops of the batch."""
        gen = cpu_generator(generator)
        first, second = self.make_views(pixel_values, gen)
        transform = self.local_view_maker.transform
        local = [transform(pixel_values, generator=gen) for _ in range(self.config.num_local_crops)]
        return first, second, local

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        cfg = self.config
        b = pixel_values.shape[0]
        first, second, local = self.make_crops(pixel_values, generator)
        global_crops = torch.cat([first, second])
        pooled = self.embed(global_crops)
        student = list(self.projector(pooled).chunk(2))
        if local:
            student += list(self.projector(self.embed(torch.cat(local))).chunk(len(local)))
        with torch.no_grad():
            t_pooled, _ = self.teacher_backbone.forward_features(global_crops)
            teacher = list(self.teacher_head(t_pooled).chunk(2))
        temperature = self.current_teacher_temperature
        # the teacher's distribution once, for the loss and for the entropy metric
        t_probs = teacher_distribution(teacher, self.centre, temperature)
        loss = dino_cross_entropy(student, t_probs, cfg.student_temperature)
        with torch.no_grad():
            entropy = -(t_probs * torch.log(t_probs.clamp_min(1e-12))).sum(-1).mean()
            metrics = pair_similarity_metrics(pooled[:b], pooled[b:])
            metrics.update(
                teacher_entropy=entropy.detach(),  # -> 0: collapse to one prototype; log(K): uniform
                momentum=loss.new_tensor(self.current_momentum),
                teacher_temperature=loss.new_tensor(temperature),
            )
        if self.training:
            centre_update(self.centre, teacher, cfg.centre_momentum)
        out = PretextOutput(loss=loss, embeddings=pooled[:b], metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
