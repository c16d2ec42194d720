"""Blocks on CUDA with a CPU generator reproduce the CPU results (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from hfssl.pretext import blocks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _same(cpu, gpu, exact: bool = True) -> None:
    if isinstance(cpu, (tuple, list)):
        for a, b in zip(cpu, gpu):
            if a is not None:
                _same(a, b, exact)
        return
    assert gpu.device.type == "cuda"
    if exact:
        assert torch.equal(cpu, gpu.cpu())
    else:
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "fn,exact",
    [
        (lambda x, g: blocks.grid_patches(x, 3, generator=g), True),
        (lambda x, g: blocks.rpl_pairs(x, generator=g), True),
        (lambda x, g: blocks.jigsaw_tiles(x, blocks.hamming_permutation_set(8, 10), generator=g), True),
        (
            lambda x, g: blocks.rubik_cubes(
                x, blocks.hamming_permutation_set(8, 10), mask_prob=0.5, generator=g
            ),
            True,
        ),
        (lambda x, g: blocks.random_rotation(x, g), True),
        (lambda x, g: blocks.models_genesis_transform(x, generator=g), False),
        (lambda x, g: blocks.overlapping_crop_pairs(x, 8, generator=g), False),
    ],
)
def test_cuda_matches_cpu_with_cpu_generator(fn, exact: bool) -> None:
    x = torch.rand(4, 1, 18, 18, 18, generator=torch.Generator().manual_seed(0))
    cpu = fn(x, torch.Generator().manual_seed(1))
    gpu = fn(x.cuda(), torch.Generator().manual_seed(1))
    _same(cpu, gpu, exact)


def test_cuda_losses_and_queue() -> None:
    z = torch.randn(8, 16, device="cuda", requires_grad=True)
    loss = blocks.NTXentLoss()(z, torch.randn(8, 16, device="cuda"))
    loss.backward()
    queue = blocks.MemoryQueue(32, 16).cuda()
    queue.enqueue(z.detach())
    assert blocks.info_nce(z, z.detach(), queue.features).device.type == "cuda"
    tokens = torch.randn(2, 16, 8, device="cuda")
    kept, mask, ids = blocks.random_masking(tokens, 0.75, torch.Generator().manual_seed(0))
    assert kept.shape == (2, 4, 8) and mask.device.type == "cuda"
