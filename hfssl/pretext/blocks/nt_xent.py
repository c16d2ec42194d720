"""Contrastive and regression losses for SimCLR, PCRL, MoCo v2 and BYOL.

Distributed convention (read this before changing anything)
-----------------------------------------------------------
With ``gather_distributed=True`` and a world size ``W > 1``, every rank gathers the embeddings
of all ranks *with gradients* (:func:`gather_with_grad`) and uses them as negatives, but only
its own ``2B`` samples as anchors. The value returned on rank ``r`` is the mean over its local
anchors, ``L_r``; the mean of ``L_r`` over ranks equals the single-process loss ``L`` on the
global batch (equal per-rank batch sizes). In the backward pass the gather sums every rank's
gradient into the owner's slice, so the gradient that reaches rank ``r``'s embeddings is
``d(sum_s L_s)/dz_r = W * dL/dz_r``. DistributedDataParallel then *averages* parameter
gradients over ranks (divides by ``W``), so the parameters receive exactly the single-process
gradient ``dL/dtheta``. Consequently: do not rescale the loss by the world size, and do not
combine it with ``all_reduce`` of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hfssl.errors import ConfigError
from hfssl.pretext.blocks.distributed import gather_with_grad, rank


@dataclass(frozen=True)
class ContrastiveStats:
    """Detached monitoring statistics of a contrastive loss.

    ``pos_sim``: mean cosine similarity of positive pairs; ``neg_sim``: mean cosine similarity
    of an anchor with its negatives. A healthy run shows ``pos_sim`` rising well above
    ``neg_sim``; both near 1 means collapse.
    """

    pos_sim: torch.Tensor
    neg_sim: torch.Tensor


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ConfigError(
            f"temperature must be > 0, got {temperature}", "use e.g. 0.1 (SimCLR) or 0.2 (MoCo v2)"
        )


class NTXentLoss(nn.Module):
    """NT-Xent (normalised temperature-scaled cross entropy) of SimCLR, Chen et al. 2020.

    For two views ``z_a, z_b`` of shape ``(B, D)`` the positive of ``a_i`` is ``b_i``; its
    negatives are all other ``2N - 2`` embeddings of the (global, ``N = W * B``) batch. The loss
    is the mean over the ``2B`` local anchors (both directions). See the module docstring for
    the multi-process convention.
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = True) -> None:
        super().__init__()
        _check_temperature(temperature)
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    def forward(
        self, z_a: torch.Tensor, z_b: torch.Tensor, return_stats: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, ContrastiveStats]:
        """Return the loss, or ``(loss, ContrastiveStats)`` when ``return_stats``."""
        if z_a.shape != z_b.shape or z_a.dim() != 2:
            raise ValueError(
                f"z_a and z_b must both be (B, D), got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            )
        batch = z_a.shape[0]
        a = F.normalize(z_a.float(), dim=1)
        b = F.normalize(z_b.float(), dim=1)
        if self.gather_distributed:
            all_a, all_b = gather_with_grad(a), gather_with_grad(b)
            offset = rank() * batch  # this rank's slice of the gathered batch
        else:
            all_a, all_b, offset = a, b, 0
        n_global = all_a.shape[0]
        labels = torch.arange(batch, device=a.device) + offset
        self_mask = F.one_hot(labels, n_global).bool()  # (B, N): the anchor itself among same-view keys
        inv_t = 1.0 / self.temperature
        # logits of each anchor against [other view | same view without itself]; the positive
        # sits in the first block at column ``offset + i``.
        logits_a = (
            torch.cat([a @ all_b.T, (a @ all_a.T).masked_fill(self_mask, float("-inf"))], dim=1) * inv_t
        )
        logits_b = (
            torch.cat([b @ all_a.T, (b @ all_b.T).masked_fill(self_mask, float("-inf"))], dim=1) * inv_t
        )
        loss = 0.5 * (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels))
        if not return_stats:
            return loss
        with torch.no_grad():
            pos = (a * b).sum(dim=1)
            # sum of cosines to all 2N candidates, minus self (=1) and positive -> 2N - 2 negatives
            total = all_a.sum(0) + all_b.sum(0)
            neg_a = (a @ total - 1.0 - pos) / (2 * n_global - 2)
            neg_b = (b @ total - 1.0 - pos) / (2 * n_global - 2)
            stats = ContrastiveStats(pos_sim=pos.mean(), neg_sim=0.5 * (neg_a.mean() + neg_b.mean()))
        return loss, stats


def info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    temperature: float = 0.2,
    return_stats: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ContrastiveStats]:
    """InfoNCE of MoCo (He et al. 2020; v2 uses ``temperature=0.2``).

    ``q`` (B, D) are queries (with grad), ``k`` (B, D) their positive keys from the momentum
    encoder (detached here), ``queue`` (K, D) the negatives. All are L2-normalised inside.
    Read the queue *before* enqueueing this step's keys. No cross-process gathering is
    needed: each query's positive is local and the queue already holds keys from all ranks.
    """
    _check_temperature(temperature)
    if q.shape != k.shape or q.dim() != 2 or queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"expected q, k (B, D) and queue (K, D); got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(queue.shape)}"
        )
    q = F.normalize(q.float(), dim=1)
    k = F.normalize(k.detach().float(), dim=1)
    negs = F.normalize(queue.detach().float(), dim=1)
    l_pos = (q * k).sum(dim=1, keepdim=True)
    l_neg = q @ negs.T
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    loss = F.cross_entropy(logits, labels)
    if not return_stats:
        return loss
    stats = ContrastiveStats(pos_sim=l_pos.detach().mean(), neg_sim=l_neg.detach().mean())
    return loss, stats


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL regression loss ``2 - 2 cos(p, z)`` averaged over the batch (Grill et al. 2020).

    ``p`` is the online prediction, ``z`` the target projection (detached here). Symmetrise by
    calling it for both view orders. Purely local: no cross-process communication needed.
    """
    if p.shape != z.shape:
        raise ValueError(f"p and z must have the same shape, got {tuple(p.shape)} and {tuple(z.shape)}")
    cos = F.cosine_similarity(p.float(), z.detach().float(), dim=-1)
    return (2.0 - 2.0 * cos).mean()
