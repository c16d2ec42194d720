"""Distillation from a frozen teacher: the student's pooled embedding matches a teacher's.

``--method distill --method-kwargs teacher=SPEC``: ``SPEC`` is anything
:func:`hfssl.hub.load_feature_extractor` accepts (an hfssl checkpoint folder, ``hf-hub:`` /
``timm:`` models, a transformers vision model folder such as DINOv2 or a CLIP vision tower).
The student (``self.backbone`` -> ``projector``, a 2-layer MLP to the teacher's embedding size)
regresses the teacher's pooled embedding of the same image: ``1 - cos`` (``loss="cosine"``,
default) or the MSE (``loss="mse"``).

The teacher runs in inference mode at its own input size (images are resized to the teacher's
``image_size`` when it has one) and normalisation (the extractor's ``prepare``: channels
repeated, mean/std applied). Its weights never change and are **never saved** into the student:
it is held outside the module tree (no parameters, no state-dict keys), and the config stores
only the spec string, so loading a saved student loads the teacher again from ``SPEC``.
Loaded teachers are cached per spec within a process.

2D students only: a 3D student from a 2D teacher (slice-wise distillation) is not implemented,
so the registry lists ``spatial_dims=(2,)`` and 3D data is refused with a ConfigError, as is a
3D teacher. Bad teachers are refused before training with one ConfigError line: a spec that
cannot be resolved or loaded offline, or a patch size that does not divide the input size.
"""

from typing import Any, ClassVar

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError, HfsslError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput
from hfssl.pretext.blocks import MLPHead
from hfssl.pretext.registry import register_pretext

LOSSES = ("cosine", "mse")
_TEACHERS: dict[str, Any] = {}


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


def _patch_size(teacher: Any) -> int | None:
    config = getattr(teacher.backbone, "config", None)
    patch = getattr(config, "patch_size", None)
    if isinstance(patch, (list, tuple)):
        patch = patch[0]
    return int(patch) if isinstance(patch, int) else None


@strict
class DistillConfig(PretextConfig):
    r"""Configuration of distillation from a frozen teacher.

    Args:
        teacher (`str`): the teacher's spec (see the module docstring); required.
        loss (`str`, defaults to `"cosine"`): ``"cosine"`` (1 - cos) or ``"mse"``.
        projection_hidden_dim (`int`, defaults to 512): hidden width of the student's projector.
    """

    model_type = "hfssl_distill"
    supported_dims: ClassVar[tuple[int, ...]] = (2,)

    teacher: str = ""
    loss: str = "cosine"
    projection_hidden_dim: int = 512

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)  # the backbone (2D only) first: a 3D student is refused as such
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
        teacher = load_teacher(self.teacher)
        if teacher.spatial_dims != 2:
            raise ConfigError(
                f"the distillation teacher {self.teacher!r} is {teacher.spatial_dims}D; distill needs a 2D teacher",
                "use a 2D image model as the teacher",
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
    """Student backbone + projector regress a frozen teacher's pooled embedding."""

    config_class = DistillConfig

    def __init__(self, config: DistillConfig) -> None:
        super().__init__(config)
        self.projector = MLPHead(
            self.backbone.num_features, config.projection_hidden_dim, load_teacher(config.teacher).embed_dim
        )
        self.post_init()

    @property
    def teacher(self):
        """The frozen teacher (outside the module tree: never in ``state_dict`` or the optimiser)."""
        return load_teacher(self.config.teacher)

    @torch.no_grad()
    def teacher_embedding(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The teacher's pooled embedding of the batch, at its input size and normalisation."""
        teacher = self.teacher.to(pixel_values.device)
        size = self.config.teacher_input_size()
        x = pixel_values.float()
        if tuple(x.shape[2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        with torch.inference_mode():
            return teacher.embed(x).float().clone()

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        target = self.teacher_embedding(pixel_values)
        pooled = self.embed(pixel_values)
        prediction = self.projector(pooled).float()
        cos = F.cosine_similarity(prediction, target, dim=-1)
        loss = (1 - cos).mean() if self.config.loss == "cosine" else F.mse_loss(prediction, target)
        metrics = {"cosine": cos.mean().detach(), "mse": F.mse_loss(prediction.detach(), target)}
        out = PretextOutput(loss=loss, embeddings=pooled, target=target, metrics=metrics)
        return out if return_dict is not False else out.to_tuple()
