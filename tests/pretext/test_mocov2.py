"""MoCo v2: queue and momentum encoder, InfoNCE wiring, export, forward/backward 2D and 3D, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hfssl.errors import ConfigError
from hfssl.pretext.blocks import info_nce
from hfssl.pretext.mocov2 import MoCoV2Config, MoCoV2ForPretraining
from hfssl.pretext.registry import get_pretext_class
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    assert_round_trip,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)


def light_backbone():
    """ResNet-10 (ResNet-18 with one block per stage), standard stem: 28 px -> 7 px; ~3x cheaper."""
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def small_3d():
    """A narrow 3D U-Net encoder (8-64 channels): the 3D code paths at a fraction of ResNet-18-3D's cost."""
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def _model(**kwargs) -> MoCoV2ForPretraining:
    kwargs.setdefault("queue_size", 16)
    return MoCoV2ForPretraining(MoCoV2Config(backbone_config=light_backbone(), **kwargs))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_registered_by_name():
    assert get_pretext_class("mocov2") is MoCoV2ForPretraining


def test_defaults_are_moco_v2():
    config = MoCoV2Config(backbone_config=backbone_2d())
    assert (config.temperature, config.momentum, config.queue_size, config.projection_dim) == (
        0.2,
        0.999,
        65536,
        128,
    )
    model = MoCoV2ForPretraining(MoCoV2Config(backbone_config=backbone_2d(), queue_size=8))
    # 2-layer MLP projector without BatchNorm: 512 -> 512 -> 128
    linears = [m for m in model.projector if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 128)]
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.projector)


def test_loss_uses_the_queue_before_enqueueing_the_keys():
    model = _model()
    x = torch.rand(4, 1, 28, 28)
    queue_before = model.queue.features.clone()
    # the reference computation, on an identical copy (the forward pass changes BatchNorm statistics)
    reference = _model()
    reference.load_state_dict(model.state_dict())
    out = model(x, generator=torch.Generator().manual_seed(7))
    view_q, view_k = reference.make_views(x, torch.Generator().manual_seed(7))
    q = reference.projector(reference.embed(view_q))
    with torch.no_grad():
        k = reference.momentum_projector(reference.momentum_backbone(view_k).pooler_output)
    torch.testing.assert_close(out.loss, info_nce(q, k, queue_before, 0.2))
    # training mode: this step's keys now sit at the start of the queue, normalised
    torch.testing.assert_close(model.queue.features[:4], F.normalize(k, dim=1))
    torch.testing.assert_close(model.queue.features[4:], queue_before[4:])
    assert int(model.queue.ptr) == 4


def test_eval_mode_leaves_the_queue_alone():
    model = _model().eval()
    before = model.queue.features.clone()
    model(torch.rand(4, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.queue.features, before) and int(model.queue.ptr) == 0


def test_symmetric_loss_enqueues_both_views():
    model = _model(symmetric=True)
    out = model(torch.rand(4, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and int(model.queue.ptr) == 8


def test_shuffle_bn_changes_only_training_batches():
    x = torch.rand(8, 1, 28, 28)
    split = _model(shuffle_bn_splits=2)
    twin, plain = _model(shuffle_bn_splits=2), _model()
    twin.load_state_dict(split.state_dict())
    plain.load_state_dict(split.state_dict())
    for m in (split, plain):
        m.eval()
    # eval mode: no sub-batches, the same loss as without ShuffleBN
    e_split = split(x, generator=torch.Generator().manual_seed(1)).loss
    torch.testing.assert_close(e_split, plain(x, generator=torch.Generator().manual_seed(1)).loss)
    for m in (split, plain):
        m.train()
    # training: BatchNorm statistics of (shuffled) sub-batches, reproducible with the generator
    a = split(x, generator=torch.Generator().manual_seed(1)).loss
    b = twin(x, generator=torch.Generator().manual_seed(1)).loss
    c = plain(x, generator=torch.Generator().manual_seed(1)).loss
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_momentum_encoder_starts_equal_and_follows_the_ema():
    model = _model(momentum=0.75)
    assert _same(model.backbone, model.momentum_backbone) and _same(model.projector, model.momentum_projector)
    assert not any(p.requires_grad for p in model.momentum_backbone.parameters())
    online = model.projector[0].weight
    with torch.no_grad():
        online.add_(1.0)
    t_before = model.momentum_projector[0].weight.detach().clone()
    model.after_optimizer_step()
    torch.testing.assert_close(model.momentum_projector[0].weight, 0.75 * t_before + 0.25 * online.detach())
    assert _same(model.export_backbone(which="target"), model.momentum_backbone)
    assert _same(model.export_backbone(), model.backbone)


def test_forward_backward_2d_and_round_trip(breast28):
    model = MoCoV2ForPretraining(MoCoV2Config(backbone_config=backbone_2d(), queue_size=32))
    x = breast28["train"][:4]
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and {"pos_sim", "neg_sim", "accuracy", "batch_accuracy"} <= set(
        out.metrics
    )
    out.loss.backward()
    assert_grads_reach_backbone(model)
    assert all(p.grad is None for p in model.momentum_backbone.parameters())
    model.after_optimizer_step()
    assert_round_trip(model, x)  # includes the queue and its pointer


def test_forward_backward_3d(adrenal28):
    model = MoCoV2ForPretraining(MoCoV2Config(backbone_config=small_3d(), queue_size=16))
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    model.after_optimizer_step()


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 0.0},
        {"queue_size": 0},
        {"momentum": 1.01},
        {"shuffle_bn_splits": 0},
        {"crop_iou_threshold": 1.0},
    ],
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ConfigError):
        MoCoV2Config(backbone_config=backbone_2d(), **bad)


def test_learns_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = MoCoV2ForPretraining(
        MoCoV2Config(
            backbone_config=light_backbone(),
            projection_dim=64,
            queue_size=256,
            momentum=0.98,  # 0.999 barely moves the key encoder in a short run
            crop_min_area=0.5,
            blur_prob=0.0,
        )
    )
    # MoCo starts slowly (the key encoder lags the query encoder): a longer run than SimCLR's
    losses = train_briefly(model, breast28["train"], steps=120, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    # the queue is full of real keys after 8 steps; from then on the loss falls
    assert sum(losses[-20:]) / 20 < sum(losses[10:30]) / 20 - 0.15, losses
    # held-out: a query is clearly closer to its own key than to queued keys or other images' keys
    assert after["pos_sim"] > after["neg_sim"] + 0.1, after
    assert after["pos_sim"] > after["batch_neg_sim"] + 0.04, after
