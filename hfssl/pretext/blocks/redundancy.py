"""Redundancy-reduction losses: Barlow Twins (Zbontar et al., ICML 2021) and VICReg (Bardes et
al., ICLR 2022).

Both losses are statistics of the **global** batch (a cross-correlation or covariance matrix
over the samples), so with ``gather_distributed=True`` each rank first gathers the two views'
embeddings from every process *with gradients* (:func:`gather_with_grad`) and computes the loss
of the whole batch. Every rank then returns the same value ``L``; the gather's backward sums the
ranks' gradients into each owner's slice (``W * dL/dz_r``) and DistributedDataParallel averages
over the ``W`` ranks, so the parameters get exactly the single-process gradient of the global
batch (the convention of :mod:`hfssl.pretext.blocks.nt_xent`; do not rescale the loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.blocks.distributed import gather_with_grad


def _check_pair(z_a: torch.Tensor, z_b: torch.Tensor) -> None:
    if z_a.shape != z_b.shape or z_a.ndim != 2:
        raise ValueError(
            f"need two (N, D) embeddings of the same shape, got {tuple(z_a.shape)}, {tuple(z_b.shape)}"
        )


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square ``(D, D)`` matrix, flattened."""
    n = matrix.shape[0]
    return matrix.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def off_diagonal_sum(matrix: torch.Tensor) -> torch.Tensor:
    """``off_diagonal(matrix).sum()`` without materialising the off-diagonal copy (nor its scatter
    in the backward pass): the sum of all entries less the diagonal's. Apply element-wise maps
    first: ``off_diagonal_sum(c.pow(2))`` is the redundancy penalty, ``off_diagonal_sum(c.abs())``
    a monitor."""
    return matrix.sum() - torch.diagonal(matrix).sum()


def barlow_twins_loss(
    z_a: torch.Tensor, z_b: torch.Tensor, lambda_offdiag: float = 5e-3, gather_distributed: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Barlow Twins: ``sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2``.

    ``C`` is the cross-correlation of the two views' embeddings ``(N, D)``, each standardised per
    feature over the (global) batch. Returns ``(loss, C)`` (``C`` for monitoring).
    """
    _check_pair(z_a, z_b)
    if gather_distributed:
        z_a, z_b = gather_with_grad(z_a), gather_with_grad(z_b)
    n = z_a.shape[0]
    if n < 2:
        raise ConfigError("Barlow Twins needs a (global) batch of at least 2 samples", "use a larger batch")
    a = F.batch_norm(z_a.float(), None, None, training=True)
    b = F.batch_norm(z_b.float(), None, None, training=True)
    c = a.T @ b / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambda_offdiag * off_diagonal_sum(c.pow(2)), c


def vicreg_terms(
    z_a: torch.Tensor, z_b: torch.Tensor, gather_distributed: bool = True, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """VICReg's three terms ``(invariance, variance, covariance)`` over the (global) batch.

    invariance: MSE of the two views; variance: mean hinge ``relu(1 - std)`` of each feature's
    standard deviation (both views averaged); covariance: squared off-diagonal covariances / D
    (both views summed), as in the reference code.
    """
    _check_pair(z_a, z_b)
    if gather_distributed:
        z_a, z_b = gather_with_grad(z_a), gather_with_grad(z_b)
    if z_a.shape[0] < 2:
        raise ConfigError("VICReg needs a (global) batch of at least 2 samples", "use a larger batch")
    z_a, z_b = z_a.float(), z_b.float()
    invariance = F.mse_loss(z_a, z_b)
    variance = 0.5 * sum(F.relu(1.0 - torch.sqrt(z.var(dim=0) + eps)).mean() for z in (z_a, z_b))
    covariance = z_a.new_zeros(())
    for z in (z_a, z_b):
        centred = z - z.mean(dim=0)
        cov = centred.T @ centred / (z.shape[0] - 1)
        covariance = covariance + off_diagonal_sum(cov.pow(2)) / z.shape[1]
    return invariance, variance, covariance
