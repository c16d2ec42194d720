"""``import hfssl`` registers every pretext task with transformers' Auto classes."""

import pytest
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


def test_method_metadata_has_one_source():
    """Each model class's family comes from ``METHODS``; ViT and 2D/3D needs agree with it."""
    from hfssl.pretext.registry import METHODS, get_method_info, get_pretext_class, method_family

    for name, info in METHODS.items():
        cls = get_pretext_class(name)
        assert cls.family == info.family == method_family(name), name
        assert cls.method_name == name and cls.__module__ == info.module
        assert (cls.config_class.backbone_family == "vit") == info.needs_vit, name
    assert get_method_info("mae").family == "generative"  # masked image modelling, everywhere
    assert get_method_info("RKB+") is METHODS["rkb_plus"] is get_method_info("rkb-plus")
    assert method_family("rkb+") == "predictive" and method_family("rot:0.5+simclr") == "multi"
    assert method_family("nope") == "unknown"


def test_list_pretext_tasks_filters():
    from hfssl.errors import ConfigError
    from hfssl.pretext.registry import list_pretext_tasks

    assert "mae" in list_pretext_tasks("generative", spatial_dims=2)
    assert "mae" not in list_pretext_tasks(spatial_dims=3)
    assert set(list_pretext_tasks("contrastive")) == {"simclr", "byol", "pcrl", "mocov2"}
    assert {"vicreg", "barlow_twins"} <= set(list_pretext_tasks("redundancy-reduction"))
    assert len(list_pretext_tasks(in_paper=True)) == 10
    with pytest.raises(ConfigError):
        list_pretext_tasks("discriminative")


def test_metadata_lookups_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from hfssl.pretext.registry import method_family, list_pretext_tasks; "
        "method_family('mae'); list_pretext_tasks(); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["vicreg", "simclr", "rot", "byol", "dino"])
def test_an_int_for_a_float_field_is_taken_as_that_float_and_other_wrong_types_stay_errors(name):
    """JSON and YAML write 0.0 as 0 (``--method-kwargs '{"rot90_prob": 0}'`` once stopped a
    sweep); the strict check still refuses a bool for a float and a float for an int."""
    from hfssl.errors import ConfigError
    from hfssl.pretext.base import _float_fields
    from hfssl.pretext.registry import get_pretext_class

    config_class = get_pretext_class(name).config_class
    floats = sorted(_float_fields(config_class))
    assert floats, f"{name}: no float field found"
    field = floats[0]
    config = config_class(**{field: 1})
    assert type(getattr(config, field)) is float and getattr(config, field) == 1.0
    with pytest.raises(ConfigError, match="invalid"):
        config_class(**{field: True})
    if name == "vicreg":
        with pytest.raises(ConfigError, match="invalid"):
            config_class(projection_dim=2.0)
