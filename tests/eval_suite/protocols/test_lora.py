"""The ``lora`` protocol end to end: only adapters + head train, counts in the record, adapter saved."""

from __future__ import annotations

import json
from pathlib import Path

import peft
import pytest
import torch

from eval_suite.runner import EvalConfig, evaluate
from hfssl.errors import ConfigError
from tests.hub.tiny_foundation import build_tiny


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lora-protocol")
    return {kind: build_tiny(kind, root / kind) for kind in ("dinov2", "clip")}


def _cfg(checkpoint: Path, tmp: Path, **kw) -> EvalConfig:
    base = dict(
        checkpoint=str(checkpoint),
        protocol="lora",
        input_size="auto",
        preset="quick",
        epochs=1,
        batch_size=16,
        max_train_samples=32,
        max_eval_samples=32,
        n_bootstrap=10,
        lora_rank=4,
        lora_alpha=8,
        results_dir=str(tmp / "res"),
        cache_dir=str(tmp / "cache"),
        mixed_precision="no",
    )
    base.update(kw)
    return EvalConfig(**base)


def test_lora_record_counts_adapters_and_head(tiny_models, tmp_path):
    # one model here: target detection of every model is tests/hub/test_lora.py's
    (record,) = evaluate(_cfg(tiny_models["clip"], tmp_path))
    params = record["protocol"]["params"]
    assert params["lora_rank"] == 4 and params["lora_targets"] == "auto" and params["input_size"] == 32
    counts = record["parameters"]
    lora = 2 * 2 * 4 * (32 + 32)  # 2 layers x (query, value) x rank 4 x (in + out)
    head = 32 * 2 + 2
    assert counts["trainable"] == lora + head
    assert counts["total"] > counts["trainable"] and counts["trainable_percent"] < 10
    assert record["fit"]["lora_target_modules"] == 4


def test_lora_scores_corrupted_test_splits_like_every_end_to_end_protocol(tiny_models, tmp_path):
    records = evaluate(_cfg(tiny_models["clip"], tmp_path, corruption="speckle_noise:2,jpeg_compression:5"))
    clean = [r for r in records if not r.get("corruption")]
    corrupted = {(r["corruption"]["name"], r["corruption"]["severity"]) for r in records if r.get("corruption")}
    assert len(clean) == 1 and corrupted == {("speckle_noise", 2), ("jpeg_compression", 5)}


def test_saved_adapter_reloads_to_the_same_predictions(tiny_models, tmp_path):
    from eval_suite.protocols.finetune import _classifier
    from hfssl.hub import load_feature_extractor

    (record,) = evaluate(_cfg(tiny_models["dinov2"], tmp_path, save_adapter=str(tmp_path / "adapter")))
    folder = tmp_path / "adapter"
    assert record["fit"]["adapter_dir"] == str(folder)
    meta = json.loads((folder / "hfssl_adapter.json").read_text())
    assert meta["input_size"] == 32 and meta["resize"] == "bicubic" and meta["num_outputs"] == 2
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_models["dinov2"]) and config["r"] == 4
    extractor = load_feature_extractor(str(tiny_models["dinov2"]))
    extractor.set_input_size(meta["input_size"], meta["resize"])
    model = peft.PeftModel.from_pretrained(
        _classifier(extractor, meta["num_outputs"], meta["head"]), str(folder)
    )
    from hfssl.data import load_source, make_dataloader

    test = load_source("breastmnist", image_size=28).get("test").select(range(32))
    batch = next(iter(make_dataloader(test, batch_size=32)))
    with torch.no_grad():
        probs = model.eval()(batch["pixel_values"]).softmax(dim=1).numpy()
    torch.testing.assert_close(
        torch.tensor(probs).double(),
        torch.tensor(record["test_outputs"]["y_score"]).double(),
        atol=2e-6,
        rtol=0,
    )


def test_lora_refuses_a_model_without_attention(tmp_path, monkeypatch):
    from hfssl import HfsslConfig, HfsslModel

    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(
        tmp_path / "cnn"
    )
    with pytest.raises(ConfigError, match="its linear/conv modules are named"):
        evaluate(_cfg(tmp_path / "cnn", tmp_path, input_size="data"))
    assert not list((tmp_path / "res").glob("*.json"))
    import eval_suite.protocols.finetune as finetune_module  # the lora protocol trains through it

    seen = {}
    original = finetune_module.run_finetune

    def spy(extractor, *args, **kwargs):
        seen["before"] = {k: v.clone() for k, v in extractor.state_dict().items()}
        out = original(extractor, *args, **kwargs)
        seen["after"] = {k: v.clone() for k, v in extractor.state_dict().items()}
        return out

    monkeypatch.setattr(finetune_module, "run_finetune", spy)
    (record,) = evaluate(_cfg(tmp_path / "cnn", tmp_path, input_size="data", lora_targets="conv"))
    assert 0 < record["parameters"]["trainable_percent"] < 100
    # the base CNN is untouched by LoRA training: weights and batch-norm running statistics alike
    base = {k: v for k, v in seen["after"].items() if "lora_" not in k}
    assert any("running_mean" in k for k in base)
    for key, value in base.items():
        name = key.replace(".base_layer", "")
        torch.testing.assert_close(value, seen["before"][name], rtol=0, atol=0)
