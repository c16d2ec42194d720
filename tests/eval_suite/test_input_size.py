"""``--input-size``/``--resize`` on every protocol with foundation models, and ``--image-size`` sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_suite.runner import EvalConfig, evaluate
from hfssl.errors import ConfigError, DataError
from tests.hub.tiny_foundation import KINDS, build_tiny

SMALL = dict(
    preset="quick",
    epochs=1,
    batch_size=16,
    max_train_samples=32,
    max_eval_samples=32,
    n_bootstrap=10,
    mixed_precision="no",
)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("input-size")
    return {kind: build_tiny(kind, root / kind) for kind in KINDS}


def _cfg(checkpoint, tmp: Path, **kw) -> EvalConfig:
    return EvalConfig(
        checkpoint=str(checkpoint),
        results_dir=str(tmp / "res"),
        cache_dir=str(tmp / "cache"),
        **{**SMALL, **kw},
    )


@pytest.mark.parametrize(
    "kind,protocol",
    [("dinov2", "linear"), ("clip", "linear"), ("vit_mae", "knn")]
    + [("dinov2", "finetune"), ("clip", "warmup"), ("vit_mae", "frozen")],
)
def test_every_protocol_runs_at_the_models_own_size(tiny_models, tmp_path, kind, protocol):
    extra = {"epochs": 2, "warmup_epochs": 1} if protocol == "warmup" else {}
    (record,) = evaluate(_cfg(tiny_models[kind], tmp_path, protocol=protocol, input_size="auto", **extra))
    assert record["dataset"]["image_size"] == 28
    assert record["dataset"]["input_size"] == 32 and record["dataset"]["resize"] == "bicubic"
    assert record["protocol"]["params"]["input_size"] == 32  # identifying: another size is another run
    counts = record["parameters"]
    assert counts["total"] > 0 and 0 <= counts["trainable"] <= counts["total"]
    expected = {"knn": 0, "linear": 32 + 1, "frozen": 32 * 2 + 2}.get(protocol)
    if expected is not None:
        assert counts["trainable"] == expected
    else:
        assert counts["trainable"] == counts["total"]


def test_input_size_and_resize_enter_the_record_id(tiny_models, tmp_path):
    ckpt = tiny_models["dinov2"]
    ids = {
        (size, resize): evaluate(_cfg(ckpt, tmp_path, protocol="knn", input_size=size, resize=resize))[0][
            "record_id"
        ]
        for size, resize in [("auto", "auto"), ("32", "bicubic"), ("32", "pad"), ("48", "bilinear")]
    }
    assert ids[("auto", "auto")] == ids[("32", "bicubic")]  # auto resolved to the same run
    assert len(set(ids.values())) == 3


def test_data_size_keeps_records_as_before(tiny_models, tmp_path):
    (record,) = evaluate(_cfg(tiny_models["dinov2"], tmp_path, protocol="knn"))
    assert "input_size" not in record["protocol"]["params"]  # earlier records keep their ids
    assert record["dataset"]["input_size"] == 28 and record["dataset"]["resize"] == "none"


def test_input_sizes_the_model_cannot_take(tiny_models, tmp_path):
    ckpt = tiny_models["dinov2"]
    with pytest.raises(ConfigError, match=r"cannot take 30 px input: its 8 px patches .* auto \(32 px\)"):
        evaluate(_cfg(ckpt, tmp_path, protocol="knn", input_size="30"))
    with pytest.raises(ConfigError, match="--resize pad cannot fit 28 px images into 16 px"):
        evaluate(_cfg(ckpt, tmp_path, protocol="knn", input_size="16", resize="pad"))
    with pytest.raises(ConfigError, match="unknown --resize 'nearest'.*auto, bilinear, bicubic, pad"):
        evaluate(_cfg(ckpt, tmp_path, protocol="knn", input_size="auto", resize="nearest"))
    with pytest.raises(ConfigError, match="not data, auto or a positive number"):
        evaluate(_cfg(ckpt, tmp_path, protocol="knn", input_size="big"))
    assert not list((tmp_path / "res").glob("*.json"))


def test_resolution_sweep_gives_records_per_size(tiny_models, tmp_path):
    records = evaluate(
        _cfg(
            tiny_models["dinov2"],
            tmp_path,
            protocol="knn",
            image_size=[28, 64],
            input_size="auto",
            seeds=[0, 1],
        )
    )
    assert [(r["dataset"]["image_size"], r["seed"]) for r in records] == [(28, 0), (28, 1), (64, 0), (64, 1)]
    assert all(r["dataset"]["input_size"] == 32 for r in records)
    assert len({r["record_id"] for r in records}) == 4


def test_sweep_with_a_missing_size_names_the_file_before_computing(tiny_models, tmp_path):
    with pytest.raises(DataError, match="breastmnist_128.npz"):
        evaluate(_cfg(tiny_models["dinov2"], tmp_path, protocol="knn", image_size=[28, 128]))
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").glob("*.json"))
    with pytest.raises(DataError, match="use --image-size with one of: 28, 64, 128, 224"):
        evaluate(_cfg(tiny_models["dinov2"], tmp_path, protocol="knn", image_size=[28, 100]))
    with pytest.raises(ConfigError, match="repeats a size"):
        evaluate(_cfg(tiny_models["dinov2"], tmp_path, protocol="knn", image_size=[28, 28]))
