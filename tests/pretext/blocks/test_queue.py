"""MoCo feature queue: FIFO order, wrap-around, normalisation, state dict."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hfssl.pretext.blocks import MemoryQueue, info_nce


def test_queue_starts_normalised_and_is_saved() -> None:
    q = MemoryQueue(8, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(q.features.norm(dim=1), torch.ones(8))
    assert set(q.state_dict()) == {"queue", "ptr"}


def test_queue_is_fifo_with_wraparound() -> None:
    q = MemoryQueue(5, 3)
    keys = [torch.randn(2, 3) for _ in range(3)]
    q.enqueue(keys[0])
    q.enqueue(keys[1])
    assert int(q.ptr) == 4
    torch.testing.assert_close(q.features[:4], F.normalize(torch.cat(keys[:2]), dim=1))
    q.enqueue(keys[2])  # slots 4 and 0: overwrites the oldest entry
    assert int(q.ptr) == 1
    torch.testing.assert_close(q.features[4], F.normalize(keys[2][0], dim=0))
    torch.testing.assert_close(q.features[0], F.normalize(keys[2][1], dim=0))
    torch.testing.assert_close(q.features[1:4], F.normalize(torch.cat(keys[:2])[1:], dim=1))


def test_queue_keeps_newest_when_batch_exceeds_size() -> None:
    q = MemoryQueue(3, 2)
    keys = torch.randn(5, 2)
    q.enqueue(keys)
    torch.testing.assert_close(q.features, F.normalize(keys[-3:], dim=1))
    assert int(q.ptr) == 0


def test_enqueue_has_no_grad_and_feeds_info_nce() -> None:
    q = MemoryQueue(6, 4)
    k = torch.randn(2, 4, requires_grad=True)
    q.enqueue(k)
    assert not q.queue.requires_grad
    query = torch.randn(2, 4, requires_grad=True)
    loss = info_nce(query, k, q.features)
    loss.backward()
    assert k.grad is None and query.grad is not None
