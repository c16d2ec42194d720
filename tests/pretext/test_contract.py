"""The contract every registered pretext method keeps, in 2D and (where supported) 3D.

One case per (method, dimension) of :data:`hfssl.pretext.registry.METHODS`, on tiny backbones:

* forward + backward on a real backbone, and the gradient **reaches the backbone**;
* the metrics in the output are detached;
* views and initialisation are reproducible: the same seed gives the same loss;
* ``save_pretrained`` / ``from_pretrained`` round trip: the state dict is bit-exact and the loss
  under the same seed is the same;
* the exported backbone, saved, loads with ``transformers.AutoModel``.

A method's own test file keeps only what is specific to it (its views, and that it learns).
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel

from hfssl.models import HfsslModel
from hfssl.pretext import create_pretext_model
from hfssl.pretext.registry import METHODS, list_pretext_tasks
from tests.pretext._helpers import assert_grads_reach_backbone, backbone_2d, backbone_3d, tiny_teacher

CASES = [(name, dims) for name in list_pretext_tasks() for dims in METHODS[name].spatial_dims]


def tiny_backbone(name: str, dims: int):
    if METHODS[name].needs_vit:
        return backbone_2d(
            "vit_tiny_patch16_224", backbone_kwargs={"patch_size": 4, "depth": 2}, decoder_channels=[64]
        )
    if dims == 2:
        return backbone_2d(small_input_stem=False, backbone_kwargs={"layers": [1, 1, 1, 1]})
    return backbone_3d("unet3d_encoder", backbone_kwargs={"channels": [8, 16, 32, 64]})


def tiny_settings(name: str, dims: int = 2) -> dict:
    settings: dict = {}
    if METHODS[name].unet_decoder:
        settings["decoder_channels"] = [32, 16, 8]
    if name == "distill":
        # 3D: slices of the adrenal masks are small blobs, whose deepest ReLU map in the random
        # tiny ResNet teacher is exactly zero (a zero target: no gradient); the tiny ViT embeds them
        settings["teacher"] = tiny_teacher("hfssl" if dims == 2 else "dinov2")
    if name == "mae":
        settings.update(decoder_dim=32, decoder_depth=1, decoder_num_heads=2)
    return settings


def _build(name: str, dims: int, seed: int = 0):
    torch.manual_seed(seed)
    return create_pretext_model(name, tiny_backbone(name, dims), **tiny_settings(name, dims)).train()


def _loss(model, pixel_values: torch.Tensor, seed: int = 1):
    torch.manual_seed(seed)
    return model(pixel_values, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def batches(breast28, adrenal28) -> dict[int, torch.Tensor]:
    return {2: breast28["train"][:4].clone(), 3: adrenal28["train"][:2].clone()}


@pytest.mark.parametrize(("name", "dims"), CASES, ids=[f"{n}-{d}d" for n, d in CASES])
def test_method_contract(name, dims, batches, tmp_path):
    x = batches[dims]
    model = _build(name, dims)
    assert model.method_name == name and model.family == METHODS[name].family
    assert model.spatial_dims == dims
    model.save_pretrained(tmp_path / "model")  # before any step: what the twin below starts from

    out = model(x, generator=torch.Generator().manual_seed(1))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), out.loss
    for key, value in (out.metrics or {}).items():
        assert not value.requires_grad, f"metric {key!r} is not detached"
    out.loss.backward()
    assert_grads_reach_backbone(model)

    # same seed -> same initialisation, same views, same loss; and a reloaded model agrees bit for bit
    twin = _build(name, dims)
    loaded = type(model).from_pretrained(tmp_path / "model").train()
    for (key, a), (key_b, b) in zip(twin.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert key == key_b and torch.equal(a, b), key
    reference = _loss(twin, x).loss
    assert torch.equal(reference, _loss(_build(name, dims), x).loss), "the same seed gave another loss"
    assert torch.equal(reference, _loss(loaded, x).loss), "the reloaded model gave another loss"

    exported = model.export_backbone()
    exported.save_pretrained(tmp_path / "backbone")
    auto = AutoModel.from_pretrained(tmp_path / "backbone").eval()
    assert isinstance(auto, HfsslModel) and name in auto.config.pretext_methods
    exported.eval()
    with torch.no_grad():
        assert torch.equal(exported(x).pooler_output, auto(x).pooler_output)
