"""Distillation from a frozen teacher: the student matches a teacher's pooled embedding and map.

``--method distill --method-kwargs teacher=SPEC``: ``SPEC`` is anything
:func:`hfssl.hub.load_feature_extractor` accepts (an hfssl checkpoint folder, ``hf-hub:`` /
``timm:`` models, a transformers vision model folder such as DINOv2 or a CLIP vision tower).

**Pooled term.** The student (``self.backbone`` -> ``projector``, a 2-layer MLP to the teacher's
embedding size) regresses the teacher's pooled embedding of the same image: ``1 - cos``
(``loss="cosine"``, default) or the MSE (``loss="mse"``).

**Spatial term** (``spatial_weight``, default 1.0; 0 switches it off). Where the teacher gives a
spatial map (:meth:`~hfssl.hub.FeatureExtractor.embed_with_map`: a CNN's deepest stage, a ViT's
patch tokens on their grid without class/register tokens), the student's deepest map goes
through ``spatial_projector`` (a 1x1 projection, a linear layer over channels, to the teacher's
channels) and is compared per position with the same loss, averaged over positions. The two maps
are compared on the *coarser* grid of the two, per axis: the finer one is area-averaged
(adaptive average pooling) down to it. Neither side is interpolated up: a bilinear upsampling of
a 1x1 or 2x2 student map would only copy values, and area averages of the finer map are exactly
the features of the image regions each coarse cell covers. Teachers without a spatial map (a
model whose deepest output is not a grid) get the pooled term only, without a warning; so does
every teacher with ``spatial_weight=0`` (no ``spatial_projector`` is built then).
On the kNN monitor the spatial term neither helps nor hurts at the setting of
``tests/training/test_knn_lift.py`` (``test_resnet`` student and SimCLR teacher of the same seed,
BreastMNIST 28 px, 250 steps, batch 128, lr 3e-3; run by hand 2026-12-05, same box as below):
seeds 0 / 1 / 2 reach 0.833, 0.859, 0.897 with ``spatial_weight`` 1.0 and 0.846, 0.872, 0.872
with 0 (both means 0.863; teachers 0.833, 0.846, 0.846; random init 0.795, 0.769, 0.744). A
pooled kNN cannot show what a per-position target is for (dense tasks); that was not measured.

The teacher runs in inference mode at its own input size (images are resized to the teacher's
``image_size`` when it has one) and normalisation (the extractor's ``prepare``: grey channels
repeated, mean/std applied). Its weights never change and are **never saved** into the student:
it is held outside the module tree (no parameters, no state-dict keys), and the config stores
only the spec string, so loading a saved student loads the teacher again from ``SPEC``.
Loaded teachers are cached per spec within a process.

**3D students, slice-wise** (measured below: it learns, a little, at a short CPU budget): the teacher
is 2D, so it sees slices. Per batch, ``slices_per_axis`` slice positions are drawn per axis
(depth, height, width) with the forward's ``generator`` (0: every slice) from the central
``slice_span`` of the axis (default 0.5: MedMNIST3D volumes are centred crops, and in
AdrenalMNIST3D 28^3 40-60 % of the slices along each axis are blank, nearly all of them in the
outer quarters; a blank slice is the same target for every volume); the teacher embeds each
slice (as an image: its prepare repeats the grey channel and normalises, resized to its size).
The student's deepest 3D map is read at the slice position (the position mapped onto the map's
grid along that axis, linearly interpolated between the two nearest cells) and averaged over the
other two axes; the projector maps it to the teacher's embedding of that slice. The spatial term
compares the student's interpolated 2D slice of its map with the teacher's map of the slice.

Does it learn? Measured 2026-12-05 (``benchmarks/distill_3d.py``, records in
``benchmarks/results/distill_3d.jsonl``; this project's shared 2-core AMD EPYC box, one thread,
other jobs running). Teacher: SimCLR ``test_resnet`` pretrained 250 steps on BreastMNIST 28 px
(seed 0); scored on the AdrenalMNIST3D volumes as the mean of its slice embeddings (three axes),
centred kNN accuracy 0.847 on the 98 validation volumes. Student: ``unet3d_encoder`` with channels
8-16-32-64 on AdrenalMNIST3D 28^3, batch 32, AdamW lr 1e-3, the defaults above; the online kNN
monitor (centred, k 20) on the validation split, step 0 = the same backbone at random init. One
volume is 1.0 point; 76 of the 98 (77.6 %) are the majority class. Seeds 0 / 1 / 2:

* 150 steps (150-210 s each): accuracy 0.786 -> 0.827, 0.796 -> 0.816, 0.806 -> 0.816 (mean
  0.796 -> 0.820); balanced accuracy 0.555 -> 0.678, 0.675 -> 0.704, 0.584 -> 0.704 (mean
  0.605 -> 0.695).
* 300 steps (325-385 s each): accuracy 0.786 -> 0.816, 0.796 -> 0.806, 0.806 -> 0.847 (mean
  0.796 -> 0.823); balanced 0.555 -> 0.656, 0.675 -> 0.665, 0.584 -> 0.740 (mean 0.605 -> 0.687).
* Without the spatial term (``spatial_weight=0``, 150 steps) it does **not** learn: accuracy
  0.786 -> 0.745, 0.796 -> 0.796, 0.806 -> 0.745 (mean 0.796 -> 0.762), balanced 0.555 -> 0.545,
  0.675 -> 0.578, 0.584 -> 0.496. The teacher's pooled slice embeddings are nearly parallel
  (mean pairwise cosine 0.987 over the central depth slice of 64 train volumes), so the pooled
  term alone carries little; the lift needs the per-position term. Keep it on for 3D.
* Control: re-estimating only the BatchNorm statistics of the same random-init students on the
  train volumes (no gradient step) gives 0.786, 0.776, 0.796 - the lift is not BN adaptation.

So with the defaults the student lifts over random init in accuracy in all six runs, by 1-4
validation volumes, and stays below its teacher's slice-averaged 0.847 (the 300-step seed 2 run
reaches it): a small, consistent lift at this CPU budget, not a strong one. Slice-wise distillation ships; longer runs,
the full-width encoder and stronger teachers were not measured. A first attempt that drew slices
from the whole axis was stopped before any score (the blank outer slices motivated ``slice_span``).

Bad teachers are refused before training with one ConfigError line: a spec that cannot be
resolved or loaded offline, a 3D teacher, a teacher that cannot take the images (or slices) the
dataset gives (channels), or a patch size that does not divide the input size.
"""

from typing import Any, ClassVar

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from torch.nn import functional as F

from hfssl.errors import ConfigError, HfsslError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput
from hfssl.pretext.blocks import MLPHead
from hfssl.pretext.registry import register_pretext

LOSSES = ("cosine", "mse")
_TEACHERS: dict[str, Any] = {}
_TEACHER_MAP_CHANNELS: dict[str, int | None] = {}


def load_teacher(spec: str):
    """The frozen :class:`~hfssl.hub.FeatureExtractor` of ``spec`` (cached), or one ConfigError line."""
    if spec not in _TEACHERS:
        from hfssl.hub import load_feature_extractor

        try:
            teacher = load_feature_extractor(spec)
        except (HfsslError, OSError, ValueError, KeyError, RuntimeError) as err:
            message = " ".join(str(err).split())[:300]
            raise ConfigError(
                f"cannot load the distillation teacher {spec!r}: {message}",
                "give an hfssl checkpoint folder, a transformers vision model folder (DINOv2, CLIP "
                "vision) or hf-hub:ORG/NAME available offline",
            ) from err
        teacher.eval().requires_grad_(False)
        _TEACHERS[spec] = teacher
    return _TEACHERS[spec]


def teacher_map_channels(spec: str) -> int | None:
    """Channels of the teacher's spatial map (probed once on a blank batch), ``None`` if it has none."""
    if spec not in _TEACHER_MAP_CHANNELS:
        teacher = load_teacher(spec)
        size = int(teacher.image_size or 64)
        probe = torch.zeros((1, teacher.in_chans) + (size,) * teacher.spatial_dims)
        try:
            with torch.inference_mode():
                _, spatial = teacher.embed_with_map(probe)
        except (HfsslError, RuntimeError, ValueError) as err:
            message = " ".join(str(err).split())[:300]
            raise ConfigError(
                f"the distillation teacher {spec!r} fails on a blank {size}px image: {message}",
                "use a teacher that embeds images of its own size",
            ) from err
        _TEACHER_MAP_CHANNELS[spec] = None if spatial is None else int(spatial.shape[1])
    return _TEACHER_MAP_CHANNELS[spec]


def _patch_size(teacher: Any) -> int | None:
    config = getattr(teacher.backbone, "config", None)
    patch = getattr(config, "patch_size", None)
    if isinstance(patch, (list, tuple)):
        patch = patch[0]
    return int(patch) if isinstance(patch, int) else None


def _takes_channels(teacher: Any, channels: int) -> bool:
    """Whether the teacher's ``prepare`` accepts images with ``channels`` channels."""
    return channels == teacher.in_chans or channels == 1 or (teacher.in_chans == 1 and channels == 3)


def common_grid(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both maps ``(N, C, *grid)`` on the coarser grid per axis (the finer one area-averaged)."""
    grid = tuple(min(x, y) for x, y in zip(a.shape[2:], b.shape[2:]))
    pool = F.adaptive_avg_pool2d if a.ndim == 4 else F.adaptive_avg_pool3d
    if tuple(a.shape[2:]) != grid:
        a = pool(a, grid)
    if tuple(b.shape[2:]) != grid:
        b = pool(b, grid)
    return a, b


def slice_of_map(feature_map: torch.Tensor, axis: int, positions: torch.Tensor, size: int) -> torch.Tensor:
    """The 3D map ``(B, C, d, h, w)`` read at slice ``positions`` of a volume ``size`` long along
    ``axis`` (0, 1, 2 = depth, height, width): ``(B * k, C, u, v)`` in ``(B, k)`` order, the slice
    position mapped onto the map's grid (cell centres aligned) and linearly interpolated."""
    dim = 2 + axis
    grid = feature_map.shape[dim]
    where = (positions.to(feature_map.device, torch.float32) + 0.5) * grid / size - 0.5
    low = where.floor().clamp(0, grid - 1)
    weight = (where - low).clamp(0, 1)
    high = (low + 1).clamp(max=grid - 1)
    shape = [1] * feature_map.ndim
    shape[dim] = -1
    weight = weight.view(shape).to(feature_map.dtype)
    out = feature_map.index_select(dim, low.long()) * (1 - weight)
    out = out + feature_map.index_select(dim, high.long()) * weight
    out = out.movedim(dim, 1)  # (B, k, C, u, v)
    return out.reshape(-1, *out.shape[2:])


@strict
class DistillConfig(PretextConfig):
    r"""Configuration of distillation from a frozen teacher.

    Args:
        teacher (`str`): the teacher's spec (see the module docstring); required.
        loss (`str`, defaults to `"cosine"`): ``"cosine"`` (1 - cos) or ``"mse"``, for both terms.
        projection_hidden_dim (`int`, defaults to 512): hidden width of the student's projector.
        spatial_weight (`float`, defaults to 1.0): weight of the per-position map term (0: off;
            teachers without a spatial map: off).
        slices_per_axis (`int`, defaults to 4): 3D students only, slices drawn per axis and batch
            (0: all of them in the span).
        slice_span (`float`, defaults to 0.5): 3D students only, the central fraction of each axis
            the slices are drawn from (1.0: the whole axis).
    """

    model_type = "hfssl_distill"
    supported_dims: ClassVar[tuple[int, ...]] = (2, 3)

    teacher: str = ""
    loss: str = "cosine"
    projection_hidden_dim: int = 512
    spatial_weight: float = 1.0
    slices_per_axis: int = 4
    slice_span: float = 0.5

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)  # the backbone's dimensions first
        if not self.teacher:
            raise ConfigError(
                "distill needs a teacher", "pass --method-kwargs teacher=FOLDER (or hf-hub:ORG/NAME)"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown distillation loss {self.loss!r}", f"use one of {', '.join(LOSSES)}")
        if self.projection_hidden_dim < 1:
            raise ConfigError(
                f"projection_hidden_dim must be >= 1, got {self.projection_hidden_dim}", "use e.g. 512"
            )
        if not self.spatial_weight >= 0:
            raise ConfigError(
                f"spatial_weight must be >= 0, got {self.spatial_weight}", "use e.g. 1.0 (0: pooled only)"
            )
        if self.slices_per_axis < 0:
            raise ConfigError(
                f"slices_per_axis must be >= 0, got {self.slices_per_axis}", "use e.g. 4 (0: every slice)"
            )
        if not 0 < self.slice_span <= 1:
            raise ConfigError(
                f"slice_span must be in (0, 1], got {self.slice_span}", "use e.g. 0.5 (1.0: whole axis)"
            )
        teacher = load_teacher(self.teacher)
        if teacher.spatial_dims != 2:
            raise ConfigError(
                f"the distillation teacher {self.teacher!r} is {teacher.spatial_dims}D; distill needs a 2D "
                "teacher (3D students learn from its slices)",
                "use a 2D image model as the teacher",
            )
        if not _takes_channels(teacher, self.in_chans):
            what = "slices of these volumes" if self.spatial_dims == 3 else "these images"
            raise ConfigError(
                f"the distillation teacher {self.teacher!r} takes {teacher.in_chans}-channel images and "
                f"cannot take {what} ({self.in_chans} channels)",
                "use a teacher for grey-scale (1) or RGB (3) images",
            )
        size = self.teacher_input_size()
        patch = _patch_size(teacher)
        if patch is not None and size % patch:
            raise ConfigError(
                f"the teacher's patch size {patch} does not divide its input size {size}",
                "use a teacher whose image_size is a multiple of its patch size",
            )

    def teacher_input_size(self) -> int:
        """Side of the images the teacher sees: its own ``image_size``, else the student's."""
        size = load_teacher(self.teacher).image_size
        return int(size) if size else self.image_size


@register_pretext("distill")
class DistillForPretraining(PretextModel):
    """Student backbone + projectors regress a frozen teacher's pooled embedding and spatial map."""

    config_class = DistillConfig

    def __init__(self, config: DistillConfig) -> None:
        super().__init__(config)
        teacher = load_teacher(config.teacher)
        self.projector = MLPHead(self.backbone.num_features, config.projection_hidden_dim, teacher.embed_dim)
        map_channels = teacher_map_channels(config.teacher) if config.spatial_weight > 0 else None
        # a 1x1 projection (linear over channels) of the student's deepest map to the teacher's
        self.spatial_projector = (
            nn.Linear(int(self.backbone.config.feature_channels[-1]), map_channels) if map_channels else None
        )
        self.post_init()

    @property
    def teacher(self):
        """The frozen teacher (outside the module tree: never in ``state_dict`` or the optimiser)."""
        return load_teacher(self.config.teacher)

    @torch.no_grad()
    def teacher_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The teacher's pooled embedding and spatial map (or ``None``) of 2D ``images``, at its
        input size and normalisation."""
        teacher = self.teacher.to(images.device)
        size = self.config.teacher_input_size()
        x = images.float()
        if tuple(x.shape[2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        with torch.inference_mode():
            pooled, spatial = teacher.embed_with_map(x)
        # clone outside inference mode: plain tensors the loss may save for backward
        return pooled.float().clone(), None if spatial is None else spatial.float().clone()

    def teacher_embedding(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The teacher's pooled embedding of a 2D batch."""
        return self.teacher_features(pixel_values)[0]

    def slice_positions(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None
    ) -> list[torch.Tensor]:
        """Per axis (depth, height, width), the sorted slice indices of this batch, drawn from the
        central ``slice_span`` of the axis."""
        positions = []
        for size in pixel_values.shape[2:]:
            span = max(1, round(size * self.config.slice_span))
            first = (size - span) // 2
            k = self.config.slices_per_axis
            if k == 0 or k >= span:
                positions.append(torch.arange(first, first + span))
            else:
                positions.append(first + torch.randperm(span, generator=generator)[:k].sort().values)
        return positions

    def _slice_targets(self, pixel_values, student_map, generator):
        """3D: (student pooled per slice, student slice maps, teacher embeddings, teacher maps)."""
        pooled, maps, targets, target_maps = [], [], [], []
        for axis, idx in enumerate(self.slice_positions(pixel_values, generator)):
            dim = 2 + axis
            slices = pixel_values.index_select(dim, idx.to(pixel_values.device)).movedim(dim, 1)
            slices = slices.reshape(-1, *slices.shape[2:])  # (B * k, C, u, v)
            target, target_map = self.teacher_features(slices)
            student = slice_of_map(student_map, axis, idx, pixel_values.shape[dim])
            pooled.append(student.mean(dim=(2, 3)))
            maps.append(student)
            targets.append(target)
            target_maps.append(target_map)
        if any(m is None for m in target_maps):
            return torch.cat(pooled), None, torch.cat(targets), None
        return torch.cat(pooled), maps, torch.cat(targets), target_maps

    def _term(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos = F.cosine_similarity(prediction, target, dim=1)
        loss = (1 - cos).mean() if self.config.loss == "cosine" else F.mse_loss(prediction, target)
        return loss, cos

    def _project_map(self, student_map: torch.Tensor, target_map: torch.Tensor):
        student_map, target_map = common_grid(student_map.float(), target_map)
        return self.spatial_projector(student_map.movedim(1, -1)).movedim(-1, 1).float(), target_map

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        pooled, student_maps = self.backbone.forward_features(pixel_values)
        if self.spatial_dims == 2:
            target, target_map = self.teacher_features(pixel_values)
            student_pooled = pooled
            pairs = [] if target_map is None else [(student_maps[-1], target_map)]
        else:
            student_pooled, maps, target, target_maps = self._slice_targets(
                pixel_values, student_maps[-1], generator
            )
            pairs = [] if maps is None else list(zip(maps, target_maps))
        prediction = self.projector(student_pooled).float()
        loss, cos = self._term(prediction, target)
        metrics = {"cosine": cos.mean().detach(), "mse": F.mse_loss(prediction.detach(), target)}
        if self.spatial_projector is not None and pairs:
            terms, cosines = [], []
            for student_map, target_map in pairs:
                term, spatial_cos = self._term(*self._project_map(student_map, target_map))
                terms.append(term)
                cosines.append(spatial_cos.mean())
            spatial = torch.stack(terms).mean()
            loss = loss + self.config.spatial_weight * spatial
            metrics["spatial_loss"] = spatial.detach()
            metrics["spatial_cosine"] = torch.stack(cosines).mean().detach()
        out = PretextOutput(loss=loss, embeddings=pooled, target=target, metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
