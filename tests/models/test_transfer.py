"""from_backbone: encoder / encoder+decoder transfer with a report of fresh keys."""

from __future__ import annotations

import pytest
import torch

from hfssl import HfsslConfig, HfsslForImageClassification, HfsslForSegmentation, HfsslModel
from hfssl.errors import CheckpointError, ConfigError
from hfssl.models import UNetDecoder


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bb")
    config = HfsslConfig(
        backbone="resnet18", image_size=28, pretext_methods=["rot"], pretrain_dataset="breastmnist"
    )
    HfsslModel(config).save_pretrained(path)
    return path


def test_encoder_transfer_from_folder(backbone_dir):
    model, report = HfsslForImageClassification.from_backbone(
        backbone_dir, num_labels=3, classifier_head="mlp"
    )
    source = HfsslModel.from_pretrained(backbone_dir)
    assert model.config.num_labels == 3 and model.config.pretext_methods == ["rot"]
    x = torch.rand(2, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.hfssl(x).pooler_output, source(x).pooler_output)
    assert all(k.startswith("hfssl.backbone.") for k in report.loaded)
    assert len(report.loaded) == len(source.state_dict())
    assert sorted(report.fresh) == sorted(k for k in model.state_dict() if k.startswith("classifier."))
    assert report.unused == []
    assert "fresh modules: classifier" in report.summary()


def test_all_transfer_loads_matching_decoder_weights():
    """A generative pretext model (backbone + UNetDecoder reconstructing 1 channel) -> segmentation."""

    class TinyAutoencoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = HfsslModel(HfsslConfig(backbone="resnet18", image_size=28))
            self.decoder = UNetDecoder(self.backbone.feature_channels, out_channels=1)

    pretext = TinyAutoencoder()
    seg, report = HfsslForSegmentation.from_backbone(pretext, transfer="all", num_labels=1)
    assert torch.equal(seg.decoder.blocks[0][0][0].weight, pretext.decoder.blocks[0][0][0].weight)
    assert torch.equal(seg.decoder.head.weight, pretext.decoder.head.weight)  # same out_channels: loaded
    assert report.fresh == []
    enc_only, report2 = HfsslForSegmentation.from_backbone(pretext, transfer="encoder", num_labels=2)
    assert not torch.equal(enc_only.decoder.blocks[0][0][0].weight, pretext.decoder.blocks[0][0][0].weight)
    assert all(k.startswith("decoder.") for k in report2.fresh) and report2.unused
    # another number of classes: the decoder body transfers, the 1x1 head is fresh
    seg3, report3 = HfsslForSegmentation.from_backbone(pretext, transfer="all", num_labels=3)
    assert sorted(report3.fresh) == ["decoder.head.bias", "decoder.head.weight"]


def test_architecture_override_and_bad_transfer_are_refused(backbone_dir):
    with pytest.raises(CheckpointError, match="does not fit"):
        HfsslForImageClassification.from_backbone(backbone_dir, in_chans=3)
    with pytest.raises(ConfigError, match="transfer"):
        HfsslForImageClassification.from_backbone(backbone_dir, transfer="decoder")
    with pytest.raises(CheckpointError, match="holds no HfsslModel"):
        HfsslForImageClassification.from_backbone(torch.nn.Linear(2, 2))
