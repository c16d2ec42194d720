"""DINO's parts (Caron et al., ICCV 2021): the projection head, the multi-crop loss, the centre.

* :class:`DINOHead` - MLP (GELU) -> bottleneck -> L2 normalisation -> weight-normalised linear
  layer to ``out_dim`` "prototypes" (the last layer's weight rows are unit vectors: DINO's
  ``norm_last_layer=True``, written as a plain ``nn.Linear`` whose weight is normalised in
  ``forward`` so the state dict stays ``weight``).
* :func:`dino_loss` - cross-entropy between the teacher's centred, sharpened distribution of
  each global crop and the student's distribution of every *other* crop.
* :func:`centre_update` - the teacher's running centre, averaged over processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import ConfigError
from hfssl.pretext.blocks.distributed import is_distributed, world_size


class NormalizedLinear(nn.Linear):
    """A bias-free linear layer whose weight rows are L2-normalised in ``forward`` (weight norm, g = 1)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, F.normalize(self.weight, dim=1))


class DINOHead(nn.Module):
    """DINO projection head: ``num_layers`` Linear layers (GELU between) to ``bottleneck_dim``,
    L2 normalisation, then a weight-normalised linear layer to ``out_dim``."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        if num_layers < 1 or min(in_dim, out_dim, hidden_dim, bottleneck_dim) < 1:
            raise ConfigError(
                f"DINO head sizes must be positive (layers {num_layers}, in {in_dim}, out {out_dim}, "
                f"hidden {hidden_dim}, bottleneck {bottleneck_dim})",
                "use e.g. out_dim=2048, hidden_dim=1024, bottleneck_dim=256, num_layers=3",
            )
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(dim, hidden_dim), nn.GELU()]
            dim = hidden_dim
        layers.append(nn.Linear(dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.last_layer = NormalizedLinear(bottleneck_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


def teacher_distribution(
    teacher: Sequence[torch.Tensor], centre: torch.Tensor, teacher_temperature: float
) -> torch.Tensor:
    """``(T, B, K)``: the teacher's centred, sharpened distributions ``softmax((t - centre) / tau)``
    of its ``T`` global crops (no gradient), one softmax over all of them."""
    if not teacher_temperature > 0:
        raise ConfigError(
            f"DINO teacher temperature must be > 0, got {teacher_temperature}", "use e.g. 0.04-0.07"
        )
    logits = torch.stack([t.detach() for t in teacher]).float()
    return F.softmax((logits - centre) / teacher_temperature, dim=-1)


def dino_loss(
    student: Sequence[torch.Tensor],
    teacher: Sequence[torch.Tensor],
    centre: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    """Mean over pairs (teacher crop ``i``, student crop ``j != i``) of ``H(p_t^i, p_s^j)``.

    ``student``: logits ``(B, K)`` of every crop (the global crops first, in the teacher's
    order); ``teacher``: logits of the global crops (no gradient); ``centre``: ``(1, K)``.
    ``p_t = softmax((t - centre) / teacher_temperature)``, ``p_s = softmax(s / student_temperature)``.
    A caller that also monitors ``p_t`` computes it once with :func:`teacher_distribution` and
    calls :func:`dino_cross_entropy`, which this is.
    """
    if not (student_temperature > 0 and teacher_temperature > 0):
        raise ConfigError(
            f"DINO temperatures must be > 0, got student {student_temperature}, teacher {teacher_temperature}",
            "use e.g. student 0.1, teacher 0.04-0.07",
        )
    return dino_cross_entropy(
        student, teacher_distribution(teacher, centre, teacher_temperature), student_temperature
    )


def dino_cross_entropy(
    student: Sequence[torch.Tensor], teacher_probs: torch.Tensor, student_temperature: float
) -> torch.Tensor:
    """:func:`dino_loss` from the teacher's distributions ``teacher_probs`` ``(T, B, K)``
    (:func:`teacher_distribution`).

    All pairs are one batched contraction: one ``log_softmax`` over the stacked student crops
    and one ``einsum`` for the ``T x S`` cross-entropies (the same sums as a loop over pairs).
    """
    if not student_temperature > 0:
        raise ConfigError(f"DINO student temperature must be > 0, got {student_temperature}", "use e.g. 0.1")
    n_t, n_s = teacher_probs.shape[0], len(student)
    terms = n_t * n_s - min(n_t, n_s)  # every (i, j) pair but the same crop
    if terms == 0:
        raise ConfigError("DINO needs at least two crops", "use 2 global crops (and any local crops)")
    log_p_s = F.log_softmax(torch.stack(list(student)).float() / student_temperature, dim=-1)  # (S, B, K)
    cross = torch.einsum(
        "ibk,jbk->ij", teacher_probs, log_p_s
    )  # (T, S): -sum over the batch of H(p_t^i, p_s^j)
    same = torch.diagonal(cross).sum()  # the min(T, S) pairs of a crop with itself
    return (same - cross.sum()) / (terms * teacher_probs.shape[1])


@torch.no_grad()
def centre_update(centre: torch.Tensor, teacher: Sequence[torch.Tensor], momentum: float) -> None:
    """In place ``centre = m * centre + (1 - m) * mean(teacher logits)``; the batch mean is
    averaged over all processes (``all_reduce``) when ``torch.distributed`` runs several."""
    outputs = torch.cat([t.detach().float() for t in teacher])
    batch_sum = outputs.sum(dim=0, keepdim=True)
    count = torch.tensor(float(outputs.shape[0]), device=outputs.device)
    if is_distributed():
        import torch.distributed as dist

        dist.all_reduce(batch_sum)
        count = count * world_size()
    centre.mul_(momentum).add_(batch_sum / count, alpha=1.0 - momentum)
