"""Export to timm's format: identical embeddings through timm.create_model, CLI, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from hfssl import HfsslConfig, HfsslModel
from hfssl.errors import CheckpointError, ConfigError
from hfssl.models.export_timm import export_timm

# Runs in a fresh interpreter that never imports hfssl: standard-stem exports are plain timm.
_PLAIN_TIMM = """
import sys, timm, torch
from safetensors.torch import load_file, save_file
for folder in sys.argv[1:]:
    model = timm.create_model("local-dir:" + folder, pretrained=True).eval()
    x = load_file(folder + "/../input.safetensors")["x"]
    with torch.no_grad():
        save_file({"y": model(x)}, folder + "/../timm_out.safetensors")
    print(folder, type(model).__name__, model.num_classes)
"""


def _embedding(model: HfsslModel, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x).pooler_output


def _export_standard_stem(tmp_path):
    folders = []
    expected = {}
    for size in (224, 128):
        config = HfsslConfig(backbone="resnet18", in_chans=3, image_size=size)
        assert config.small_input_stem is False
        model = HfsslModel(config)
        x = torch.rand(2, 3, size, size)
        case = tmp_path / f"r18_{size}"
        out = export_timm(model, case / "timm")
        save_file({"x": x}, case / "input.safetensors")
        expected[size] = (case, _embedding(model, x))
        folders.append(str(out))
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["architecture"] == "resnet18" and cfg["model_args"]["in_chans"] == 3
        assert cfg["pretrained_cfg"]["input_size"] == [3, size, size] and "tag" not in cfg["pretrained_cfg"]
        assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    return folders, expected


def test_standard_stem_exports_load_as_timm_builtin(tmp_path):
    """224 and 128 px ResNet-18: timm's own ``resnet18`` entrypoint rebuilds them, embeddings identical."""
    folders, expected = _export_standard_stem(tmp_path)
    assert timm.models.get_arch_name("resnet18") == "resnet18"
    from timm.models._registry import _model_to_module

    assert _model_to_module["resnet18"] == "resnet"  # timm's module, not hfssl's registrations
    for folder, (case, emb) in zip(folders, expected.values()):
        model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        assert type(model).__module__ == "timm.models.resnet"
        with torch.no_grad():
            assert torch.equal(model(load_file(case / "input.safetensors")["x"]), emb)


@pytest.mark.slow
def test_standard_stem_loads_in_plain_timm_process(tmp_path):
    """The same in a fresh interpreter that never imports hfssl (slow: a second torch/timm import)."""
    folders, expected = _export_standard_stem(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PLAIN_TIMM, *folders], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for case, emb in expected.values():
        assert torch.equal(load_file(case / "timm_out.safetensors")["y"], emb)


@pytest.mark.parametrize(
    "kwargs, arch",
    [
        (dict(backbone="resnet18", image_size=28), "hfssl_resnet18_smallstem"),
        (
            dict(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4}),
            "vit_tiny_patch16_224",
        ),
    ],
)
def test_export_round_trip_identical_embeddings(kwargs, arch, tmp_path):
    config = HfsslConfig(**kwargs)
    HfsslModel(config).save_pretrained(tmp_path / "ckpt")
    out = export_timm(tmp_path / "ckpt", tmp_path / "timm")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architecture"] == arch and cfg["num_classes"] == 0
    if "vit" in arch:
        assert cfg["model_args"]["patch_size"] == 4 and cfg["model_args"]["dynamic_img_size"] is True
    timm_model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    ours = HfsslModel.from_pretrained(tmp_path / "ckpt")
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(timm_model(x), _embedding(ours, x))


def test_refusals_from_python(tmp_path):
    model3d = HfsslModel(HfsslConfig(backbone="resnet18_3d", spatial_dims=3, image_size=8))
    with pytest.raises(ConfigError, match="3D backbone"):
        export_timm(model3d, tmp_path / "x")
    with pytest.raises(CheckpointError):
        export_timm(tmp_path / "missing", tmp_path / "y")
