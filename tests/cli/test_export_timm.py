"""``hfssl export-timm``: exports task checkpoints' backbones, keeps existing folders, refuses 3D."""

from __future__ import annotations

from safetensors.torch import load_file

from hfssl import HfsslConfig, HfsslForImageClassification, HfsslModel
from hfssl.cli.main import main


def test_cli_exports_task_checkpoint_and_refuses_3d(tmp_path, capsys):
    clf = HfsslForImageClassification(HfsslConfig(backbone="resnet18", image_size=28, num_labels=3))
    clf.save_pretrained(tmp_path / "clf")
    assert main(["export-timm", str(tmp_path / "clf"), str(tmp_path / "out")]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert not any(k.startswith(("classifier", "hfssl.")) for k in weights) and "conv1.weight" in weights
    # an existing folder is kept unless --overwrite
    assert main(["export-timm", str(tmp_path / "clf"), str(tmp_path / "out")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export-timm", str(tmp_path / "clf"), str(tmp_path / "out"), "--overwrite"]) == 0
    HfsslModel(HfsslConfig(backbone="unet3d_encoder", spatial_dims=3, image_size=8)).save_pretrained(
        tmp_path / "u3"
    )
    assert main(["export-timm", str(tmp_path / "u3"), str(tmp_path / "out3")]) == 2
    assert "3D backbone" in capsys.readouterr().err and not (tmp_path / "out3").exists()
