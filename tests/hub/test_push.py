"""``hfssl push`` against the loopback Hub: one commit, idempotent, round trips, offline cache, refusals."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import EvalResult, HfApi, ModelCard, snapshot_download
from transformers import AutoModel

from hfssl import HfsslConfig, HfsslModel
from hfssl.errors import CheckpointError, ConfigError, HubError
from hfssl.hub import load_feature_extractor
from hfssl.hub.push import push_checkpoint
from tests.hub.conftest import offline


def _save(model: HfsslModel, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_2d() -> HfsslModel:
    torch.manual_seed(0)
    config = HfsslConfig(
        backbone="test_resnet",
        in_chans=1,
        image_size=28,
        pretext_methods=["simclr"],
        pretrain_dataset="breastmnist",
        pretrain_image_size=28,
        pretrain_epochs=2,
        pretrain_seed=0,
    )
    return HfsslModel(config).eval()


@pytest.fixture(scope="module")
def model_3d() -> HfsslModel:
    torch.manual_seed(0)
    config = HfsslConfig(
        backbone="unet3d_encoder",
        spatial_dims=3,
        in_chans=1,
        image_size=16,
        backbone_kwargs={"channels": [4, 8, 8, 16]},
        pretext_methods=["rot", "mg"],
        pretrain_dataset="adrenalmnist3d",
    )
    return HfsslModel(config).eval()


def _pooled(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x).pooler_output


def test_push_round_trip_2d_idempotent_and_offline(hub, tmp_path, model_2d):
    """One commit with the four kinds of files; from_pretrained(repo) identical; re-push no commit; offline."""
    folder = _save(model_2d, tmp_path / "run" / "backbone")
    (tmp_path / "run" / "training_args.json").write_text(
        json.dumps(
            {
                "method": "simclr",
                "learning_rate": 0.3,
                "num_processes": 1,
                "method_kwargs": {"temperature": 0.5},
            }
        )
    )
    before = sorted(p.name for p in folder.iterdir())
    results = [
        EvalResult(
            task_type="image-classification",
            task_name="linear",
            dataset_type="breastmnist",
            dataset_name="BreastMNIST",
            dataset_split="test",
            metric_type="balanced_accuracy",
            metric_value=0.8125,
        )
    ]
    first = push_checkpoint(
        folder, "org/simclr-2d", eval_results=results, dataset_ids={"breastmnist": "org/breastmnist"}
    )
    assert first.created_commit
    assert sorted(first.uploaded) == sorted(
        [".eval_results/hfssl.yaml", "README.md", "config.json", "model.safetensors"]
    )
    assert (
        hub.commit_count("org/simclr-2d") == 2
    )  # the repo's initial commit + ours: ONE commit for all files
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written locally

    remote = hub.files("org/simclr-2d")
    assert remote["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    card = ModelCard(remote["README.md"].decode())
    assert card.data.eval_results[0].metric_value == 0.8125
    assert "medical-imaging" in card.data.tags and "contrastive" in card.data.tags

    second = push_checkpoint(
        folder, "org/simclr-2d", eval_results=results, dataset_ids={"breastmnist": "org/breastmnist"}
    )
    assert not second.created_commit and second.commit_oid == first.commit_oid and second.uploaded == []
    assert hub.commit_count("org/simclr-2d") == 2

    x = torch.rand(2, 1, 28, 28)
    pulled = AutoModel.from_pretrained("org/simclr-2d")
    assert type(pulled) is HfsslModel
    torch.testing.assert_close(_pooled(pulled, x), _pooled(model_2d, x), rtol=0, atol=0)
    extractor = load_feature_extractor("org/simclr-2d")
    assert extractor.info.spec == "org/simclr-2d" and extractor.info.source == "hfssl"
    torch.testing.assert_close(extractor.eval().embed(x), _pooled(model_2d, x), rtol=0, atol=0)

    requests_before = len(hub.state.requests)
    with offline():
        offline_model = AutoModel.from_pretrained("org/simclr-2d")
        offline_extractor = load_feature_extractor("org/simclr-2d")
    assert len(hub.state.requests) == requests_before  # served from the cache alone
    torch.testing.assert_close(_pooled(offline_model, x), _pooled(model_2d, x), rtol=0, atol=0)
    assert offline_extractor.info.content_hash == extractor.info.content_hash


def test_push_changed_weights_and_revision_pin(hub, tmp_path, model_2d):
    """A changed folder makes a new commit with only what changed; revision= pins the old weights."""
    folder = _save(model_2d, tmp_path / "backbone")
    first = push_checkpoint(folder, "org/pinned")
    changed = HfsslModel(model_2d.config)  # other weights, same config
    changed.save_pretrained(folder)
    second = push_checkpoint(folder, "org/pinned", commit_message="retrained")
    assert second.created_commit and second.uploaded == ["model.safetensors"]
    assert sorted(second.unchanged) == ["README.md", "config.json"]
    assert [c.title for c in HfApi().list_repo_commits("org/pinned")][0] == "retrained"

    x = torch.rand(2, 1, 28, 28)
    old = AutoModel.from_pretrained("org/pinned", revision=first.commit_oid)
    new = AutoModel.from_pretrained("org/pinned")
    torch.testing.assert_close(_pooled(old, x), _pooled(model_2d, x), rtol=0, atol=0)
    torch.testing.assert_close(_pooled(new, x), _pooled(changed, x), rtol=0, atol=0)
    pinned = load_feature_extractor(f"org/pinned@{first.commit_oid}")
    assert pinned.info.spec == f"org/pinned@{first.commit_oid}"
    torch.testing.assert_close(pinned.eval().embed(x), _pooled(model_2d, x), rtol=0, atol=0)


def test_push_to_branch(hub, tmp_path, model_2d):
    folder = _save(model_2d, tmp_path / "backbone")
    result = push_checkpoint(folder, "org/branched", revision="v2")
    assert result.revision == "v2" and "model.safetensors" in hub.files("org/branched", revision="v2")
    assert "model.safetensors" not in hub.files("org/branched", revision="main")


def test_push_round_trip_3d(hub, tmp_path, model_3d):
    folder = _save(model_3d, tmp_path / "backbone3d")
    result = push_checkpoint(folder, "org/rot-mg-3d")
    assert result.created_commit
    local = snapshot_download("org/rot-mg-3d")
    assert sorted(p.name for p in Path(local).iterdir()) == [
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    x = torch.rand(1, 1, 16, 16, 16)
    pulled = AutoModel.from_pretrained("org/rot-mg-3d")
    torch.testing.assert_close(_pooled(pulled, x), _pooled(model_3d, x), rtol=0, atol=0)
    card = ModelCard((Path(local) / "README.md").read_text())
    assert {"predictive", "generative", "multi", "3d"} <= set(card.data.tags)
    assert "no timm route" in card.text
    assert push_checkpoint(folder, "org/rot-mg-3d").created_commit is False


def test_timm_export_push_loads_with_timm_route(hub, tmp_path, model_2d):
    """export-timm folder -> push -> hf-hub:ORG/NAME: identical embeddings through timm."""
    from hfssl.models.export_timm import export_timm

    out = export_timm(model_2d, tmp_path / "timm-export")
    result = push_checkpoint(out, "org/simclr-timm")
    assert sorted(result.uploaded) == ["README.md", "config.json", "model.safetensors"]
    card = ModelCard(hub.files("org/simclr-timm")["README.md"].decode())
    assert card.data.library_name == "timm" and 'timm.create_model("hf-hub:org/simclr-timm"' in card.text
    extractor = load_feature_extractor("hf-hub:org/simclr-timm")
    assert extractor.info.source == "timm"
    x = torch.rand(2, 1, 28, 28)
    native = timm.create_model(
        "hf-hub:org/simclr-timm", pretrained=True, num_classes=0
    ).eval()  # timm's own route
    with torch.no_grad():
        torch.testing.assert_close(extractor.eval().embed(x), _pooled(model_2d, x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(native(x), _pooled(model_2d, x), rtol=1e-5, atol=1e-6)


def test_task_and_pretext_checkpoints_load_with_the_carded_auto_class(hub, tmp_path, model_2d):
    from transformers import AutoModelForImageClassification, AutoModelForPreTraining

    from hfssl import HfsslForImageClassification, create_pretext_model

    classifier, _ = HfsslForImageClassification.from_backbone(model_2d, num_labels=2)
    classifier.eval().save_pretrained(tmp_path / "cls")
    push_checkpoint(tmp_path / "cls", "org/cls")
    assert (
        'AutoModelForImageClassification.from_pretrained("org/cls")'
        in hub.files("org/cls")["README.md"].decode()
    )
    x = torch.rand(2, 1, 28, 28)
    pulled = AutoModelForImageClassification.from_pretrained("org/cls").eval()
    with torch.no_grad():
        # same weights; tolerance only for summation-order noise (memory layout after loading)
        torch.testing.assert_close(pulled(x).logits, classifier(x).logits, rtol=1e-5, atol=1e-6)

    pretext = create_pretext_model("rot", model_2d.config).eval()
    pretext.save_pretrained(tmp_path / "pretext")
    push_checkpoint(tmp_path / "pretext", "org/rot-pretext")
    assert "AutoModelForPreTraining.from_pretrained" in hub.files("org/rot-pretext")["README.md"].decode()
    assert type(AutoModelForPreTraining.from_pretrained("org/rot-pretext")) is type(pretext)


# ------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("repo_id", ["no-slash", "org/name/extra", "org/bad name", "org/na--me", ""])
def test_malformed_repo_id(hub, tmp_path, model_2d, repo_id):
    folder = _save(model_2d, tmp_path / "backbone")
    with pytest.raises(ConfigError, match="malformed repo id"):
        push_checkpoint(folder, repo_id)
    assert hub.state.requests == []


def test_not_a_checkpoint(hub, tmp_path, model_2d):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        push_checkpoint(empty, "org/x")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not an hfssl checkpoint"):
        push_checkpoint(other, "org/x")
    pickled = _save(model_2d, tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="only pickle weights"):
        push_checkpoint(pickled, "org/x")
    with pytest.raises(CheckpointError, match="is not a folder"):
        push_checkpoint(tmp_path / "missing", "org/x")
    assert hub.state.requests == []  # refused before any network traffic


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_hub(tmp_path, model_2d, monkeypatch):
    """A dead endpoint: one-line HubError, and no cache or local files left behind."""
    from huggingface_hub import constants, hf_api

    dead = f"http://127.0.0.1:{_closed_port()}"
    cache = tmp_path / "cache"
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_api.api, "endpoint", dead)
    # a refused connection is retried with backoff (hfssl.hub.remote.with_retries): record the
    # waits instead of sleeping them (they were 30 s of this test)
    import time

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    folder = _save(model_2d, tmp_path / "backbone")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(HubError, match="cannot reach the Hub") as err:
        push_checkpoint(folder, "org/x")
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0], waits
    assert "\n" not in err.value.one_line() and dead in err.value.one_line()
    with pytest.raises(HubError, match="cannot reach the Hub"):
        load_feature_extractor("org/x")
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not cache.exists() or not any(cache.rglob("*.safetensors"))


def test_pickle_only_repo_is_refused(hub, tmp_path):
    hub.put_files(
        "org/pickled", {"config.json": b'{"model_type": "hfssl"}', "pytorch_model.bin": b"\x80\x04pickle"}
    )
    with pytest.raises(CheckpointError, match=r"only as pickle \(pytorch_model.bin\)"):
        load_feature_extractor("org/pickled")
    with pytest.raises(CheckpointError, match="only as pickle"):
        load_feature_extractor("hf-hub:org/pickled")
    downloads = [p for m, p in hub.state.requests if "/resolve/" in p]
    assert downloads == []  # refused from the file list, nothing fetched
    assert not list((tmp_path / "hf-cache").rglob("pytorch_model.bin"))


def test_missing_repo_and_revision(hub):
    with pytest.raises(CheckpointError, match="repository not found"):
        load_feature_extractor("org/does-not-exist")
    hub.put_files("org/exists", {"config.json": b"{}", "model.safetensors": b""})
    with pytest.raises(CheckpointError, match="revision not found"):
        load_feature_extractor("org/exists", revision="nope")


def _record(content_hash: str, seed: int, balanced_accuracy: float, spec: str) -> dict:
    from eval_suite.results import make_record

    return make_record(
        checkpoint={
            "spec": spec,
            "name": "simclr",
            "source": "hfssl",
            "content_hash": content_hash,
            "random_init": False,
        },
        dataset={
            "name": "breastmnist",
            "image_size": 28,
            "spatial_dims": 2,
            "task": "binary",
            "num_classes": 2,
            "train_split": "train",
            "eval_split": "test",
        },
        protocol={"name": "linear", "params": {"epochs": 2}},
        regime={"label_fraction": 1.0, "imbalance_ratio": "natural"},
        policy={"sampler": "none", "loss": "ce", "augment": "none", "mixup": 0.0},
        seed=seed,
        metrics={"balanced_accuracy": balanced_accuracy, "accuracy": 0.9},
    )


def test_push_with_evaluation_records(hub, tmp_path, model_2d):
    """Records of these weights (default folder CHECKPOINT/eval_results) -> model-index means + files in the commit."""
    import eval_suite.results
    from eval_suite.results import eval_results_to_rows, write_record
    from hfssl.utils.io import file_sha256

    folder = _save(model_2d, tmp_path / "backbone")
    digest = file_sha256(folder / "model.safetensors")
    results_dir = folder / "eval_results"
    mine = [
        write_record(_record(digest, 0, 0.70, str(folder)), results_dir),
        write_record(_record(digest, 1, 0.80, "org/with-records"), results_dir),  # same weights, other spec
    ]
    write_record(_record("f" * 64, 0, 0.99, "other/ckpt"), results_dir)  # another checkpoint: left out
    result = push_checkpoint(folder, "org/with-records", record_schema=eval_suite.results)
    assert result.records_used == 2 and result.records_skipped == 1
    assert sorted(p for p in result.uploaded if p.startswith("eval_results/")) == sorted(
        f"eval_results/{p.name}" for p in mine
    )
    card = ModelCard(hub.files("org/with-records")["README.md"].decode())
    by_metric = {r.metric_type: r for r in card.data.eval_results}
    assert by_metric["balanced_accuracy"].metric_value == pytest.approx(0.75)
    assert by_metric["balanced_accuracy"].dataset_type == "breastmnist"
    rows = eval_results_to_rows(card.data.eval_results)  # what the leaderboard reads back
    rows = [(r["protocol"], r["n_seeds"], r["value"]) for r in rows if r["metric"] == "balanced_accuracy"]
    assert rows == [("linear", 2, 0.75)]
    assert hub.files("org/with-records")[f"eval_results/{mine[0].name}"] == mine[0].read_bytes()
    assert (
        push_checkpoint(folder, "org/with-records", record_schema=eval_suite.results).created_commit is False
    )

    with pytest.raises(Exception, match="does not exist"):
        push_checkpoint(
            folder, "org/with-records", results_dir=tmp_path / "nope", record_schema=eval_suite.results
        )
    with pytest.raises(Exception, match="no record schema"):  # the schema is the evaluator's: handed in
        push_checkpoint(folder, "org/with-records")
