"""``import hfssl`` registers every pretext task with transformers' Auto classes."""

import torch
from transformers import AutoConfig, AutoModelForPreTraining

import hfssl
from hfssl.pretext import create_pretext_model, list_pretext_tasks
from tests.pretext._helpers import backbone_2d


def test_every_task_is_registered_with_auto_config():
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    registered = set(CONFIG_MAPPING.keys())
    for name in list_pretext_tasks():
        assert f"hfssl_{name}" in registered, name
    assert "hfssl_multi" in registered
    assert hfssl.list_pretext_tasks() == list_pretext_tasks()


def test_auto_model_for_pretraining_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_pretext_model("rot+ae", backbone_2d("resnet10t", image_size=28)).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "hfssl_multi"
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
