"""LoRA through peft: target detection, only adapters + head train, the saved adapter reloads."""

from __future__ import annotations

from pathlib import Path

import peft  # a test dependency; importing it after hfssl must work (hfssl/_autoregister.py)
import pytest
import torch
from torch import nn

from hfssl.errors import ConfigError
from hfssl.hub import load_feature_extractor
from hfssl.hub.lora import (
    ATTENTION_NAMES,
    apply_lora,
    find_lora_targets,
    parameter_counts,
    read_adapter_meta,
    save_adapter,
)
from tests.hub.tiny_foundation import KINDS, build_tiny


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lora-models")
    return {kind: build_tiny(kind, root / kind) for kind in KINDS}


class Classifier(nn.Module):
    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor
        self.head = nn.Linear(extractor.embed_dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.extractor.embed(x))


@pytest.mark.parametrize("kind", KINDS)
def test_default_targets_are_the_query_and_value_projections(tiny_models, kind):
    extractor = load_feature_extractor(str(tiny_models[kind]))
    names = find_lora_targets(extractor.backbone, "auto", prefix="extractor.backbone.")
    assert len(names) == 2 * 2  # query + value in each of the 2 layers
    assert all(n.startswith("extractor.backbone.") and n.split(".")[-1] in ATTENTION_NAMES for n in names)


def test_no_matching_module_lists_what_is_there():
    from transformers import ResNetConfig, ResNetModel

    model = ResNetModel(ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))
    with pytest.raises(
        ConfigError, match=r"matches --lora-targets 'auto' \(its linear/conv modules are named: .*convolution"
    ):
        find_lora_targets(model, "auto", spec="tiny-resnet")
    convs = find_lora_targets(model, "conv")
    assert convs and "embedder.embedder.convolution" not in convs  # the stem sees the raw image
    with pytest.raises(ConfigError, match="no module of"):
        find_lora_targets(model, "nosuch,alsonot")


def test_only_adapters_and_head_train_and_the_adapter_reloads(tiny_models, tmp_path):
    torch.manual_seed(0)
    extractor = load_feature_extractor(str(tiny_models["dinov2"]))
    extractor.set_input_size(32)
    targets = find_lora_targets(extractor.backbone, prefix="extractor.backbone.")
    model = apply_lora(
        Classifier(extractor),
        targets,
        rank=4,
        alpha=8,
        modules_to_save=["head"],
        base_model_name_or_path="tiny",
    )
    counts = parameter_counts(model)
    trainable, everything = model.get_nb_trainable_parameters()
    assert counts["trainable"] == trainable
    head = sum(p.numel() for p in model.base_model.model.head.original_module.parameters())
    assert counts["total"] == everything - head  # peft's frozen copy of the head is not counted twice
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert trainable == lora + head and lora == 4 * 4 * (32 + 32)
    base = {
        n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n and "head" not in n
    }
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = torch.rand(8, 1, 28, 28), torch.tensor([0, 1] * 4)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for n, p in model.named_parameters():
        if n in base:
            torch.testing.assert_close(p, base[n], rtol=0, atol=0)  # every base weight unchanged
    assert all(not torch.equal(p, adapters[n]) for n, p in model.named_parameters() if n in adapters)

    folder = save_adapter(model, tmp_path / "adapter", {"base_model": "tiny"})
    assert {"adapter_config.json", "adapter_model.safetensors", "hfssl_adapter.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert read_adapter_meta(folder)["base_model"] == "tiny"
    fresh = load_feature_extractor(str(tiny_models["dinov2"]))
    fresh.set_input_size(32)
    torch.manual_seed(1)  # a differently initialised head: the adapter's own must be loaded
    reloaded = peft.PeftModel.from_pretrained(Classifier(fresh), str(folder)).eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model(x), rtol=0, atol=0)
    save_adapter(model, folder, {"base_model": "again"})  # replacing an adapter is atomic too
    assert read_adapter_meta(folder)["base_model"] == "again"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_adapter_pushes_with_its_card_and_loads_back_from_the_hub(hub, tiny_models, tmp_path):
    from huggingface_hub import ModelCard, snapshot_download

    from hfssl.cli.main import main
    from hfssl.hub.push import push_adapter

    torch.manual_seed(0)
    extractor = load_feature_extractor(str(tiny_models["clip"]))
    targets = find_lora_targets(extractor.backbone, prefix="extractor.backbone.")
    model = apply_lora(
        Classifier(extractor), targets, rank=2, modules_to_save=["head"], base_model_name_or_path="org/clip"
    )
    meta = {
        "base_model": "org/clip",
        "base_content_hash": extractor.info.content_hash,
        "dataset": "breastmnist",
        "image_size": 28,
        "input_size": 32,
        "resize": "bicubic",
        "class_names": ["malignant", "normal, benign"],
        "head": "linear",
        "num_outputs": 2,
        "seed": 0,
        "lora": {"lora_rank": 2, "lora_alpha": 16.0, "lora_targets": "auto"},
        "parameters": parameter_counts(model),
    }
    folder = save_adapter(model, tmp_path / "adapter", meta)
    assert main(["push", str(folder), "--repo-id", "org/clip-lora"]) == 0
    files = hub.files("org/clip-lora")
    assert {"adapter_config.json", "adapter_model.safetensors", "hfssl_adapter.json", "README.md"} <= set(
        files
    )
    card = ModelCard(files["README.md"].decode())
    assert (
        card.data.library_name == "peft" and card.data.base_model == "org/clip" and "lora" in card.data.tags
    )
    assert (
        f"{meta['parameters']['trainable']:,} of" in card.text
        and 'set_input_size(32, "bicubic")' in card.text
    )
    again = push_adapter(folder, "org/clip-lora")
    assert not again.created_commit  # idempotent
    local = snapshot_download("org/clip-lora")
    fresh = load_feature_extractor(str(tiny_models["clip"]))
    reloaded = peft.PeftModel.from_pretrained(Classifier(fresh), local).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), model.eval()(x), rtol=0, atol=0)
