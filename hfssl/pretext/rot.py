"""ROT: rotation prediction (Gidaris et al., ICLR 2018), the paper's predictive baseline.

Each image is rotated by one of 4 angles (2D: 0/90/180/270°) or one of 10 rotations (3D:
identity + 90/180/270° about each of the three axes) and the network predicts which. The
head is the paper's shallow classifier (GAP → FC 1024 → classes; ``head_depth`` sets the
number of hidden layers).

Before the rotation each image is augmented as in RotNet's own training pipeline (a random
resized crop, area ``crop_min_area``..1, back to the input size, then a horizontal flip with
``flip_prob``; the paper's reference code also crops before rotating, in 2D and 3D). Why it
matters on medical images: a whole, un-cropped ultrasound or CT image has a global layout
(bright near-field at the top, dark attenuated far-field at the bottom) from which its
orientation can be read without looking at any anatomy: the plain task is solved from that
layout alone and its features lift kNN accuracy over random init less than the cropped task's
(the docstring of ``tests/training/test_knn_lift.py`` records both runs on BreastMNIST).
``crop_min_area=1.0, flip_prob=0.0`` gives the plain (un-augmented) task.
"""

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch.nn import functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.base import PretextConfig, PretextModel, PretextOutput, accuracy
from hfssl.pretext.blocks import NUM_ROTATIONS_2D, NUM_ROTATIONS_3D, classification_head, rotate_2d, rotate_3d
from hfssl.pretext.registry import register_pretext


@strict
class RotConfig(PretextConfig):
    r"""Configuration of ROT.

    Args:
        all_rotations (`bool`, defaults to `False`): feed every rotation of every image (RotNet's
            recipe; the batch grows 4x in 2D, 10x in 3D) instead of one random rotation per image.
        head_depth (`int`, defaults to 1): hidden FC layers of the rotation classifier.
        head_hidden_dim (`int`, defaults to 1024): their width.
        crop_min_area (`float`, defaults to 0.08): smallest area (3D: volume) fraction of the random
            resized crop taken before the rotation (torchvision's and RotNet's 0.08); 1.0: no crop.
        flip_prob (`float`, defaults to 0.5): probability of a horizontal (last-axis) flip before
            the rotation; 0.0: none.
    """

    model_type = "hfssl_rot"

    all_rotations: bool = False
    head_depth: int = 1
    head_hidden_dim: int = 1024
    crop_min_area: float = 0.08
    flip_prob: float = 0.5

    def __post_init__(self, **kwargs: Any) -> None:
        if self.head_depth < 0:
            raise ConfigError(
                f"head_depth must be >= 0, got {self.head_depth}", "use 1 (shallow) or more (deep)"
            )
        if not 0.0 < self.crop_min_area <= 1.0:
            raise ConfigError(
                f"crop_min_area must be in (0, 1], got {self.crop_min_area}",
                "use e.g. 0.08, or 1.0 for no crop",
            )
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ConfigError(
                f"flip_prob must be in [0, 1], got {self.flip_prob}", "use e.g. 0.5, or 0.0 for no flip"
            )
        super().__post_init__(**kwargs)


@register_pretext("rot")
class RotForPretraining(PretextModel):
    """Rotation prediction on a shared backbone."""

    config_class = RotConfig

    def __init__(self, config: RotConfig) -> None:
        super().__init__(config)
        self.num_rotations = NUM_ROTATIONS_2D if config.spatial_dims == 2 else NUM_ROTATIONS_3D
        self.head = classification_head(
            self.backbone.num_features,
            self.num_rotations,
            depth=config.head_depth,
            hidden_dim=config.head_hidden_dim,
        )
        self.post_init()

    def augment(self, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The pre-rotation augmentation: random resized crop, then horizontal flip (see the module doc)."""
        from hfssl.data.augment import RandomFlip, RandomResizedCrop
        from hfssl.pretext.shared import cpu_generator

        gen = cpu_generator(generator)  # the batched transforms draw their parameters on the CPU
        images = pixel_values
        if self.config.crop_min_area < 1.0:
            images = RandomResizedCrop(scale=(self.config.crop_min_area, 1.0))(images, generator=gen)
        if self.config.flip_prob > 0.0:
            images = RandomFlip(p=self.config.flip_prob, axes=(self.spatial_dims - 1,))(images, generator=gen)
        return images

    def make_views(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented, rotated images and their rotation labels."""
        pixel_values = self.augment(pixel_values, generator)
        batch = pixel_values.shape[0]
        device = pixel_values.device
        if self.config.all_rotations:
            labels = torch.arange(self.num_rotations, device=device).repeat_interleave(batch)
            images = pixel_values.repeat(self.num_rotations, *([1] * (pixel_values.ndim - 1)))
        else:
            gen_device = generator.device if generator is not None else device
            labels = torch.randint(self.num_rotations, (batch,), generator=generator, device=gen_device).to(
                device
            )
            images = pixel_values
        rotate = rotate_2d if self.spatial_dims == 2 else rotate_3d
        return rotate(images, labels), labels

    def forward(
        self,
        pixel_values: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> PretextOutput | tuple:
        self.check_pixel_values(pixel_values)
        images, labels = self.make_views(pixel_values, generator)
        embeddings = self.embed(images)
        logits = self.head(embeddings)
        loss = F.cross_entropy(logits, labels)
        out = PretextOutput(
            loss=loss,
            logits=logits,
            labels=labels,
            embeddings=embeddings,
            metrics={"accuracy": accuracy(logits, labels)},
        )
        return out if return_dict is not False else out.to_tuple()
