"""HfsslConfig: defaults, derived fields, validation errors, serialisation."""

from __future__ import annotations

import pytest

from hfssl import HfsslConfig
from hfssl.errors import ConfigError


def test_defaults_and_derived_fields_resnet18_28px():
    config = HfsslConfig()
    assert (config.backbone, config.spatial_dims, config.in_chans, config.image_size) == (
        "resnet18",
        2,
        1,
        28,
    )
    assert config.backbone_kwargs == {}
    assert config.small_input_stem is True  # auto: ResNet at <= 64 px
    assert config.feature_dim == 512
    assert config.feature_channels == [64, 64, 128, 256, 512]
    assert config.feature_reductions == [1, 1, 2, 4, 8]
    assert config.hfssl_version is not None


def test_standard_stem_above_64px_and_explicit_override():
    config = HfsslConfig(backbone="resnet50", image_size=128, in_chans=3)
    assert config.small_input_stem is False
    assert config.feature_reductions == [2, 4, 8, 16, 32]
    assert config.feature_channels == [64, 256, 512, 1024, 2048] and config.feature_dim == 2048
    forced = HfsslConfig(backbone="resnet18", image_size=28, small_input_stem=False)
    assert forced.feature_reductions == [2, 4, 8, 16, 32]


def test_vit_defaults_four_blocks_and_dynamic_size():
    config = HfsslConfig(backbone="vit_tiny_patch16_224", image_size=28, backbone_kwargs={"patch_size": 4})
    assert config.feature_dim == 192
    assert config.feature_indices == [2, 5, 8, 11]
    assert config.feature_channels == [192] * 4 and config.feature_reductions == [4] * 4
    assert config.small_input_stem is False


def test_3d_backbones_derived():
    unet = HfsslConfig(backbone="unet3d_encoder", spatial_dims=3, image_size=28)
    assert unet.feature_channels == [64, 128, 256, 512] and unet.feature_reductions == [1, 2, 4, 8]
    res = HfsslConfig(backbone="resnet18_3d", spatial_dims=3, image_size=28)
    assert (
        res.small_input_stem is True and res.feature_reductions == [1, 1, 2, 4, 8] and res.feature_dim == 512
    )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"backbone": "resnet1800"}, "unknown backbone"),
        ({"backbone": "unet3d_encoder", "spatial_dims": 2}, "set spatial_dims=3"),
        ({"backbone": "resnet18", "spatial_dims": 3}, "2D timm model"),
        ({"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
        ({"in_chans": 0}, "in_chans"),
        ({"backbone_kwargs": {"num_classes": 10}}, "may not set num_classes"),
        ({"backbone": "vit_tiny_patch16_224", "small_input_stem": True}, "small_input_stem=True"),
        ({"backbone": "vit_tiny_patch16_224", "image_size": 28}, "patch_size"),
        ({"feature_indices": [3, 1]}, "feature_indices"),
        ({"feature_dim": 1024}, "feature_dim=1024"),
        ({"classifier_head": "deep"}, "invalid HfsslConfig value"),
        ({"spatial_dims": "2"}, "invalid HfsslConfig value"),
        ({"backbone": "unet3d_encoder", "spatial_dims": 3, "backbone_kwargs": {"depth": 5}}, "not options"),
        ({"backbone": "resnet18", "backbone_kwargs": {"not_a_kwarg": 1}}, "timm cannot build"),
        ({"decoder_channels": [256, 128, 64, 32, 16]}, "decoder_channels"),
    ],
)
def test_bad_values_raise_config_error(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        HfsslConfig(**kwargs)
    assert fragment in str(info.value)
    assert info.value.hint


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean.*resnet18"):
        HfsslConfig(backbone="resnet_18")


def test_round_trip_through_dict_and_arch_change_rederives(tmp_path):
    config = HfsslConfig(
        backbone="resnet18", in_chans=3, image_size=64, num_labels=4, pretext_methods=["simclr"]
    )
    config.save_pretrained(tmp_path)
    loaded = HfsslConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.num_labels == 4 and loaded.pretext_methods == ["simclr"]
    # from_pretrained(..., image_size=...) sets the attribute after construction: derived fields follow
    bigger = HfsslConfig.from_pretrained(tmp_path, backbone="resnet50")
    assert bigger.feature_dim == 2048 and bigger.feature_channels[-1] == 2048
    other = HfsslConfig.from_pretrained(tmp_path, backbone="convnext_atto")  # 4 stages, no ResNet stem
    assert other.feature_indices == [0, 1, 2, 3] and other.small_input_stem is False


def test_ordinal_problem_type_and_num_outputs():
    from hfssl.models.heads import DEFAULT_ORDINAL_HEAD

    assert HfsslConfig(problem_type="ordinal", num_labels=5, ordinal_head="regression").num_outputs == 1
    assert HfsslConfig(problem_type="ordinal", num_labels=5, ordinal_head="classification").num_outputs == 5
    assert HfsslConfig(problem_type="ordinal", num_labels=5, ordinal_head="cumulative").num_outputs == 4
    assert HfsslConfig(problem_type="ordinal", num_labels=5).resolved_ordinal_head == DEFAULT_ORDINAL_HEAD
    assert HfsslConfig(num_labels=3).num_outputs == 3
    assert HfsslConfig(num_labels=3).resolved_ordinal_head is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_labels=3, ordinal_head="cumulative"), "problem_type is None"),
        (dict(num_labels=2, problem_type="ordinal", ordinal_head="cumulative"), "at least 3 grades"),
        (
            dict(num_labels=4, problem_type="ordinal", ordinal_head="regression", ordinal_thresholds=[0.5]),
            "3 cut",
        ),
        (
            dict(
                num_labels=4,
                problem_type="ordinal",
                ordinal_head="cumulative",
                ordinal_thresholds=[0.5, 1.5, 2.5],
            ),
            "regression head",
        ),
    ],
)
def test_ordinal_head_bad_input_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        HfsslConfig(**kwargs)


def test_ordinal_config_saved_before_ordinal_heads_loads_as_regression(tmp_path):
    import json

    from hfssl.models import HfsslConfig as Config

    Config(backbone="test_resnet", num_labels=5, problem_type="ordinal").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved.pop("ordinal_head")
    (tmp_path / "config.json").write_text(json.dumps(saved))
    old = Config.from_pretrained(tmp_path)
    assert old.resolved_ordinal_head == "regression" and old.num_outputs == 1
    new = Config(backbone="test_resnet", num_labels=5, problem_type="ordinal")
    assert new.resolved_ordinal_head == "classification" and new.num_outputs == 5
