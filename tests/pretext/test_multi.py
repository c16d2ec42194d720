"""Multi-SSL: one shared backbone, fixed and learned weights, momentum sub-methods, round trip, learning."""

from __future__ import annotations

import importlib.util
import os
import tempfile

import pytest
import torch
from transformers import AutoModelForPreTraining

from hfssl.errors import ConfigError
from hfssl.models import HfsslForSegmentation, HfsslModel
from hfssl.pretext.multi import MultiConfig, MultiPretextForPretraining
from tests.pretext._helpers import (
    assert_grads_reach_backbone,
    backbone_2d,
    backbone_3d,
    evaluate,
    train_briefly,
)

LIGHT = {
    "rot": {"head_hidden_dim": 64},
    "simclr": {"projection_hidden_dim": 64, "projection_dim": 32},
    "byol": {"projection_hidden_dim": 64, "prediction_hidden_dim": 64, "projection_dim": 32},
}
needs_mg = pytest.mark.skipif(
    importlib.util.find_spec("hfssl.pretext.mg") is None, reason="mg not written yet"
)


def light_backbone():
    """ResNet-10 (ResNet-18 with one block per stage), standard stem: 28 px -> 7 px; ~3x cheaper."""
    return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})


def small_3d():
    """A narrow 3D U-Net encoder (8-64 channels): the 3D code paths at a fraction of ResNet-18-3D's cost."""
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def _multi(methods, weights=None, backbone=None, **configs) -> MultiPretextForPretraining:
    method_configs = {m: {**LIGHT.get(m, {}), **configs.get(m, {})} for m in methods}
    config = MultiConfig(
        backbone_config=backbone or light_backbone(),
        methods=list(methods),
        weights=weights,
        method_configs=method_configs,
    )
    return MultiPretextForPretraining(config)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_sub_methods_share_one_backbone_stored_once():
    model = _multi(["rot", "simclr"])
    assert model.method_names == ["rot", "simclr"]
    assert model.tasks["rot"].backbone is model.backbone and model.tasks["simclr"].backbone is model.backbone
    keys = list(model.state_dict())
    assert not any(".backbone." in k for k in keys if k.startswith("tasks."))
    n_backbone = len(model.backbone.state_dict())
    assert sum(k.startswith("backbone.") for k in keys) == n_backbone
    assert len({id(p) for p in model.parameters()}) == len(list(model.parameters()))


def test_fixed_weights_combine_the_sub_losses():
    model = _multi(["rot", "simclr"], weights=[0.5, 2.0])
    x = torch.rand(6, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(0))
    # the same sub-models on the same generator stream, one after the other
    twin = _multi(["rot", "simclr"], weights=[0.5, 2.0])
    twin.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(0)
    rot = twin.tasks["rot"](x, generator=gen).loss
    simclr = twin.tasks["simclr"](x, generator=gen).loss
    torch.testing.assert_close(out.loss, 0.5 * rot + 2.0 * simclr)
    torch.testing.assert_close(out.metrics["rot/loss"], rot.detach())
    assert {"rot/accuracy", "simclr/pos_sim", "simclr/weight"} <= set(out.metrics)
    assert out.logits.shape == (6, 4) and out.labels.shape == (6,) and out.embeddings.shape == (6, 512)


def test_backbone_gradient_is_the_sum_of_the_tasks_gradients():
    model = _multi(["rot", "simclr"])
    x = torch.rand(6, 1, 28, 28)
    model(x, generator=torch.Generator().manual_seed(0)).loss.backward()
    combined = model.backbone.backbone.conv1.weight.grad
    per_task = []
    for keep in ("rot", "simclr"):
        twin = _multi(["rot", "simclr"])
        twin.load_state_dict(model.state_dict())
        gen = torch.Generator().manual_seed(0)
        losses = {m: twin.tasks[m](x, generator=gen).loss for m in ("rot", "simclr")}
        losses[keep].backward()
        grad = twin.backbone.backbone.conv1.weight.grad
        assert grad.abs().sum() > 0
        per_task.append(grad)
    torch.testing.assert_close(combined, per_task[0] + per_task[1], rtol=1e-4, atol=1e-6)
    assert model.tasks["rot"].head[0].weight.grad is not None
    assert model.tasks["simclr"].projector[0].weight.grad is not None


def test_learned_weights_are_uncertainty_weighting():
    model = _multi(["rot", "simclr"], weights=[None, 1.0])
    assert model.log_vars.shape == (1,)
    with torch.no_grad():
        model.log_vars.fill_(0.7)
    x = torch.rand(6, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(0))
    rot, simclr = out.metrics["rot/loss"], out.metrics["simclr/loss"]
    expected = torch.exp(torch.tensor(-0.7)) * rot + 0.7 + simclr
    torch.testing.assert_close(out.loss.detach(), expected)
    torch.testing.assert_close(out.metrics["rot/weight"], torch.exp(torch.tensor(-0.7)))
    out.loss.backward()
    # d/ds (exp(-s) L + s) = 1 - exp(-s) L
    torch.testing.assert_close(model.log_vars.grad, 1 - torch.exp(torch.tensor([-0.7])) * rot)
    assert model.config.spec == "rot:learned+simclr"
    weights = model.loss_weights()
    torch.testing.assert_close(weights[0], torch.exp(torch.tensor(-0.7)))
    assert float(weights[1]) == 1.0


def test_round_trip_and_export(breast28):
    model = _multi(["rot", "simclr"], weights=[0.5, None])
    x = breast28["train"][:4]
    model(x, generator=torch.Generator().manual_seed(0)).loss.backward()
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        assert sorted(os.listdir(tmp)) == ["config.json", "model.safetensors"]
        loaded = MultiPretextForPretraining.from_pretrained(tmp).eval()
        assert loaded.config.methods == ["rot", "simclr"] and loaded.config.weights == [0.5, None]
        assert loaded.config.method_configs["simclr"]["projection_dim"] == 32
        assert loaded.tasks["rot"].backbone is loaded.backbone
        assert type(AutoModelForPreTraining.from_pretrained(tmp)) is MultiPretextForPretraining
        for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), name
        gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        torch.testing.assert_close(model(x, generator=gen_a).loss, loaded(x, generator=gen_b).loss)
        exported = model.export_backbone(provenance={"pretrain_dataset": "breastmnist"})
        assert isinstance(exported, HfsslModel)
        assert exported.config.pretext_methods == ["rot", "simclr"]
        exported.save_pretrained(os.path.join(tmp, "backbone"))
        reloaded = HfsslModel.from_pretrained(os.path.join(tmp, "backbone")).eval()
        assert reloaded.config.pretrain_dataset == "breastmnist"
        torch.testing.assert_close(reloaded(x).pooler_output, model.backbone(x).pooler_output)
    with pytest.raises(ConfigError, match="target"):
        model.export_backbone(which="target")


@needs_mg
def test_mg_plus_byol_momentum_copy_and_decoder_transfer():
    model = _multi(["mg", "byol"], byol={"momentum": 0.5})
    byol = model.tasks["byol"]
    # BYOL's target encoder is a frozen copy of the shared backbone, not of its own discarded one
    assert byol.backbone is model.backbone and byol.target_backbone is not model.backbone
    assert _same(byol.target_backbone, model.backbone)
    assert not any(p.requires_grad for p in byol.target_backbone.parameters())
    x = torch.rand(4, 1, 28, 28)
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.reconstruction.shape == x.shape and {"mg/mse", "byol/pos_sim"} <= set(out.metrics)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out.loss.backward()
    before = byol.target_backbone.backbone.conv1.weight.detach().clone()
    optimizer.step()
    model.after_optimizer_step()
    online = model.backbone.backbone.conv1.weight.detach()
    torch.testing.assert_close(byol.target_backbone.backbone.conv1.weight, 0.5 * before + 0.5 * online)
    assert _same(model.export_backbone(which="target"), byol.target_backbone)
    # the generative sub-method's decoder transfers to segmentation
    assert model.decoder is model.tasks["mg"].decoder
    seg, report = HfsslForSegmentation.from_backbone(model, transfer="all", num_labels=1)
    assert any(k.startswith("decoder.") for k in report.loaded)
    seg_decoder = seg.decoder.state_dict()
    for key, value in model.decoder.state_dict().items():
        assert torch.equal(seg_decoder[key], value), key


def test_forward_backward_3d(adrenal28):
    model = _multi(["rot", "simclr"], backbone=small_3d())
    out = model(adrenal28["train"][:2], generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and out.logits.shape == (2, 10)
    out.loss.backward()
    assert_grads_reach_backbone(model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["rot"]}, "two or more"),
        ({"methods": ["rot", "rot"]}, "twice"),
        ({"methods": ["rot", "nope"]}, "unknown"),
        ({"methods": ["rot", "simclr"], "weights": [1.0]}, "one weight per method"),
        ({"methods": ["rot", "simclr"], "weights": [1.0, -1.0]}, "> 0"),
        ({"methods": ["rot", "simclr"], "method_configs": {"byol": {}}}, "not among"),
        ({"methods": ["rot", "simclr"], "method_configs": {"simclr": {"temprature": 0.5}}}, "temperature"),
        ({"methods": ["rot", "simclr"], "method_configs": {"simclr": {"temperature": -1.0}}}, "temperature"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MultiConfig(backbone_config=backbone_2d(), **kwargs)


def test_learns_both_tasks_on_breastmnist(breast28):
    torch.manual_seed(0)
    model = _multi(
        ["rot", "simclr"],
        rot={"head_hidden_dim": 256},
        simclr={"projection_hidden_dim": 128, "projection_dim": 64, "crop_min_area": 0.5, "blur_prob": 0.0},
    )
    before = evaluate(model, breast28["test"])
    train_briefly(model, breast28["train"], steps=60, batch_size=32, lr=2e-3)
    after = evaluate(model, breast28["test"])
    assert after["loss"] < before["loss"], (before, after)
    assert after["rot/accuracy"] > 0.5, after  # chance 0.25
    assert after["simclr/pos_sim"] > after["simclr/neg_sim"] + 0.1, after
