"""Run an evaluation: any checkpoint x dataset x protocol x regime x policy x seeds -> result records.

``evaluate(EvalConfig(...))`` returns one record per seed (schema: ``eval_suite/README.md``), each
written atomically to ``results_dir/<record_id>.json``. A seed whose record id already exists there
is loaded, not recomputed, so interrupted grids resume where they stopped. ``compare(records,
baseline_records, metric)`` gives the paired bootstrap difference against a baseline (normally the
``scratch`` protocol with the same seeds) and the per-class recall deltas.

Protocols: ``linear`` and ``knn`` on cached frozen features (``eval_suite.features``);
``finetune``, ``warmup``, ``frozen`` and ``scratch`` end to end (``eval_suite.protocols.finetune``);
``segmentation`` (``eval_suite.protocols.segmentation``, DRIVE).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval_suite import regimes
from eval_suite.protocols import (
    FEATURE_PROTOCOLS,
    PROTOCOLS,
)
from hfssl.errors import CheckpointError, ConfigError, DataError
from hfssl.utils.logging import get_logger

logger = get_logger("eval_suite.runner")

# medmnist task names (hfssl.data.describe) -> record task names
_TASKS = {
    "binary-class": "binary",
    "multi-class": "multiclass",
    "ordinal-regression": "ordinal",
    "multi-label, binary-class": "multilabel",
    "segmentation": "segmentation",
}
# bootstrap CIs for the scalar metrics (per_class / group_accuracy are not resampled)
_NON_SCALAR = ("per_class", "group_accuracy")


@dataclass
class EvalConfig:
    """Everything that defines an evaluation run (also the ``hfssl evaluate`` options)."""

    checkpoint: str = field(
        metadata={"help": "checkpoint spec: hfssl checkpoint folder, Hub repo id, timm:NAME, ..."}
    )
    dataset: str = field(default="breastmnist", metadata={"help": "data source: a MedMNIST subset or drive"})
    image_size: int = field(
        default=28, metadata={"help": "MedMNIST image size (28, 64, ...); ignored for drive"}
    )
    protocol: str = field(default="linear", metadata={"help": f"one of: {', '.join(PROTOCOLS)}"})
    seeds: list[int] = field(
        default_factory=lambda: [0], metadata={"help": "seeds; the protocol repeats per seed"}
    )
    label_fraction: float = field(
        default=1.0, metadata={"help": "fraction of training labels (0.01, 0.1, 1.0)"}
    )
    imbalance_ratio: str = field(
        default="natural",
        metadata={"help": "natural (as shipped), a majority:minority ratio >= 1, or balanced"},
    )
    sampler: str = field(default="none", metadata={"help": regimes.SAMPLERS_HELP})
    loss: str = field(default="ce", metadata={"help": "ce, weighted (inverse class frequency) or focal"})
    augment: str = field(
        default="none", metadata={"help": "none or S1..S6 (the paper's augmentation ladder)"}
    )
    mixup: float = field(default=0.0, metadata={"help": "mixup alpha (0 = off)"})
    preset: str | None = field(
        default="medmnist",
        metadata={"help": "training recipe: medmnist (official: Adam 1e-3, 100 epochs, batch 128) or quick"},
    )
    epochs: int | None = field(default=None, metadata={"help": "override the preset's epochs"})
    batch_size: int | None = field(default=None, metadata={"help": "override the preset's batch size"})
    lr: float | None = field(default=None, metadata={"help": "override the preset's learning rate"})
    warmup_epochs: int | None = field(
        default=None, metadata={"help": "warmup protocol: frozen-encoder epochs (default 10%% of epochs)"}
    )
    patience: int | None = field(default=None, metadata={"help": "early stopping patience in epochs (off)"})
    select_metric: str = field(
        default="auc", metadata={"help": "validation metric that picks the best epoch"}
    )
    head: str = field(default="linear", metadata={"help": "classification head: linear or mlp (GAP-FC1024)"})
    knn_k: int = field(default=20, metadata={"help": "neighbours of the knn protocol"})
    metrics: list[str] | None = field(default=None, metadata={"help": "metrics to compute (default: all)"})
    skip_connections: bool = field(default=True, metadata={"help": "segmentation: U-Net skip connections"})
    patch_size: int = field(default=64, metadata={"help": "segmentation: training patch / window size"})
    patches_per_image: int = field(default=32, metadata={"help": "segmentation: patches per image and epoch"})
    sw_overlap: float = field(default=0.5, metadata={"help": "segmentation: sliding-window overlap"})
    decoder_channels: list[int] | None = field(
        default=None, metadata={"help": "segmentation: decoder widths (default 256 128 64)"}
    )
    random_init: bool = field(
        default=False,
        metadata={"help": "use the architecture at random init (implied by --protocol scratch)"},
    )
    results_dir: str = field(default="results", metadata={"help": "folder of result records"})
    data_dir: str | None = field(default=None, metadata={"help": "data root (else $HFSSL_DATA_DIR)"})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "feature cache (default $HFSSL_EVAL_CACHE or ~/.cache/hfssl/features)"},
    )
    compare_to: str | None = field(
        default=None,
        metadata={"help": "baseline: scratch (same recipe, random init) or another checkpoint spec"},
    )
    name: str | None = field(default=None, metadata={"help": "display name of the checkpoint"})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "cap the training rows (stratified; tests and demos)"}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "cap validation/test rows (tests only; recorded in the protocol)"}
    )
    n_bootstrap: int = field(default=1000, metadata={"help": "bootstrap resamples for the test CIs"})
    num_workers: int = field(default=0, metadata={"help": "data loader workers"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, mps"})


# -------------------------------------------------------------------------------------- dataset
@dataclass
class _Data:
    dsd: Any
    name: str
    task: str
    spatial_dims: int
    in_chans: int
    class_names: list[str]
    image_size: Any


def _load_data(cfg: EvalConfig) -> _Data:
    from hfssl.data import describe, load_source

    is_drive = cfg.dataset.strip().lower() == "drive"
    if is_drive:
        dsd = load_source("drive", data_dir=cfg.data_dir, validation_size=4, seed=0)
    else:
        dsd = load_source(cfg.dataset, image_size=cfg.image_size, data_dir=cfg.data_dir)
    desc = describe(dsd)
    task = _TASKS.get(desc.task)
    if task is None or task == "multilabel":
        raise DataError(
            f"dataset {cfg.dataset} is {desc.task}; the protocols handle binary, multi-class, ordinal and "
            "segmentation data",
            "choose another dataset",
        )
    for split in ("train", "validation", "test"):
        if split not in dsd:
            raise DataError(
                f"dataset {cfg.dataset} has no {split!r} split", "use a source with train/validation/test"
            )
    if cfg.max_eval_samples is not None:
        from datasets import DatasetDict

        cap = int(cfg.max_eval_samples)
        dsd = DatasetDict(
            {k: (v if k == "train" else v.select(range(min(cap, len(v))))) for k, v in dsd.items()}
        )
    return _Data(
        dsd=dsd,
        name=desc.name.split(":")[-1],
        task=task,
        spatial_dims=desc.spatial_dims,
        in_chans=desc.in_chans,
        class_names=list(desc.class_names),
        image_size=desc.image_size if isinstance(desc.image_size, int) else list(desc.image_size),
    )


# ---------------------------------------------------------------------------------- checkpoint
def _load_extractor(spec: str, random_init: bool, seed: int):
    import torch

    from hfssl.hub import load_feature_extractor

    torch.manual_seed(seed)  # random init (scratch, timm names) is then reproducible per seed
    return load_feature_extractor(spec, random_init=random_init)


def _check_fit(extractor: Any, data: _Data) -> str:
    """Refuse 2D/3D mismatches and channel counts the extractor cannot adapt; return the adapter."""
    if extractor.spatial_dims != data.spatial_dims:
        kind = {2: "2D", 3: "3D"}
        raise DataError(
            f"checkpoint {extractor.info.spec} is {kind.get(extractor.spatial_dims)} but dataset "
            f"{data.name} is {kind.get(data.spatial_dims)}",
            "evaluate 2D checkpoints on 2D datasets (breastmnist, drive) and 3D ones on 3D datasets "
            "(adrenalmnist3d)",
        )
    if data.in_chans == extractor.in_chans:
        return "none"
    if data.in_chans == 1:
        return "repeat"
    if extractor.in_chans == 1 and data.in_chans == 3:
        return "rgb-to-grey-mean"
    raise CheckpointError(
        f"checkpoint {extractor.info.spec} takes {extractor.in_chans}-channel images but {data.name} has "
        f"{data.in_chans} channels",
        "use a checkpoint built for 1- or 3-channel input",
    )


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _checkpoint_block(extractor: Any, cfg: EvalConfig, adapter: str, random_init: bool) -> dict[str, Any]:
    desc = extractor.describe()
    backbone = desc.get("backbone") or str(desc["spec"]).removeprefix("timm:").split("?")[0]
    block = {
        "spec": str(cfg.checkpoint),
        "name": cfg.name or _display_name(cfg.checkpoint, desc),
        "source": desc["source"],
        "content_hash": desc["content_hash"],
        "random_init": bool(random_init or desc.get("random_init")),
        "pretext_methods": desc.get("pretext_methods") or [],
        "channel_adapter": adapter,
        "embed_dim": desc["embed_dim"],
        "spatial_dims": desc["spatial_dims"],
        "backbone": backbone,
    }
    if random_init:
        # The scratch baseline depends on the architecture only, so every checkpoint of the same
        # architecture shares (and reuses) one set of scratch records.
        arch = {k: desc.get(k) for k in ("source", "in_chans", "image_size", "spatial_dims", "embed_dim")}
        arch.update(backbone=backbone, feature_channels=list(extractor.feature_channels))
        block.update(
            spec=f"scratch:{backbone}",
            source_spec=str(cfg.checkpoint),
            content_hash=_sha(arch),
            name=cfg.name or f"scratch ({backbone})",
            pretext_methods=[],
        )
    return block


def _display_name(spec: str, desc: dict[str, Any]) -> str:
    text = str(spec).rstrip("/")
    if text.startswith("timm:"):
        return text
    methods = desc.get("pretext_methods") or []
    base = Path(text).name or text
    return f"{base} ({'+'.join(methods)})" if methods and "+".join(methods) not in base else base


# ------------------------------------------------------------------------------------- helpers
def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _validate(cfg: EvalConfig, task: str | None = None) -> None:
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {cfg.protocol!r}", f"use one of: {', '.join(PROTOCOLS)}")
    if not cfg.seeds:
        raise ConfigError("no seeds given", "pass e.g. --seeds 0 1 2")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds {cfg.seeds} repeat a value", "pass distinct seeds")
    if cfg.knn_k < 1:
        raise ConfigError(f"knn_k {cfg.knn_k} is below 1", "pass --knn-k 20 (or any k >= 1)")
    if cfg.protocol in FEATURE_PROTOCOLS:
        policy = regimes.normalise_policy(cfg.sampler, cfg.loss, cfg.augment, cfg.mixup)
        if policy["augment"] != "none" or policy["mixup"] > 0 or policy["loss"] == "focal":
            raise ConfigError(
                f"the {cfg.protocol} protocol works on cached features, so augmentation, mixup and focal "
                "loss cannot apply",
                "use --protocol frozen (head only, trained end to end with augmentation) or finetune",
            )
    if task is None:
        return
    if task == "segmentation" and cfg.protocol != "segmentation":
        raise ConfigError(
            f"DRIVE is a segmentation dataset; protocol {cfg.protocol!r} is for classification",
            "use --protocol segmentation",
        )
    if task != "segmentation" and cfg.protocol == "segmentation":
        raise ConfigError(
            "the segmentation protocol needs a segmentation dataset",
            "use --dataset drive, or a classification protocol",
        )
    from eval_suite.metrics import METRICS_BY_TASK

    allowed = list(METRICS_BY_TASK.get(task, [])) + (["qwk"] if task == "multiclass" else [])
    for metric in [*(cfg.metrics or []), *([cfg.select_metric] if task != "segmentation" else [])]:
        if allowed and metric not in allowed:
            raise ConfigError(
                f"metric {metric!r} does not apply to a {task} task",
                f"use one of: {', '.join(allowed)}",
            )


def _recipe(cfg: EvalConfig, segmentation: bool = False):
    from eval_suite.protocols.finetune import PRESETS, Recipe
    from eval_suite.protocols.segmentation import SEG_PRESETS

    preset = cfg.preset or "medmnist"
    table = SEG_PRESETS if segmentation else PRESETS
    if preset not in table:
        raise ConfigError(f"unknown preset {preset!r}", f"use one of: {', '.join(table)}")
    epochs = cfg.epochs or table[preset]["epochs"]
    warmup = cfg.warmup_epochs if cfg.warmup_epochs is not None else max(1, round(0.1 * epochs))
    return Recipe.from_preset(
        preset,
        table=table,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        select_metric=cfg.select_metric,
        patience=cfg.patience,
        warmup_epochs=warmup if cfg.protocol == "warmup" else 0,
        head=cfg.head,
    )


def _protocol_block(cfg: EvalConfig) -> dict[str, Any]:
    params: dict[str, Any]
    if cfg.protocol == "linear":
        from eval_suite.protocols.linear import DEFAULT_C_GRID

        params = {
            "classifier": "logistic_regression",
            "C_grid": list(DEFAULT_C_GRID),
            "select_metric": cfg.select_metric,
        }
    elif cfg.protocol == "knn":
        params = {"k": cfg.knn_k, "metric": "cosine", "weights": "exp(sim/0.07)"}
    elif cfg.protocol == "segmentation":
        recipe = _recipe(cfg, segmentation=True)
        params = {
            **recipe.params(),
            "preset": cfg.preset or "medmnist",
            "skip_connections": cfg.skip_connections,
            "patch_size": cfg.patch_size,
            "patches_per_image": cfg.patches_per_image,
            "sw_overlap": cfg.sw_overlap,
            "decoder_channels": list(cfg.decoder_channels or (256, 128, 64)),
            "loss": "dice+bce",
        }
        for key in ("select_metric", "head", "warmup_epochs"):
            params.pop(key, None)
    else:
        params = {**_recipe(cfg).params(), "preset": cfg.preset or "medmnist"}
    if cfg.max_train_samples is not None:
        params["max_train_samples"] = cfg.max_train_samples
    if cfg.max_eval_samples is not None:
        params["max_eval_samples"] = cfg.max_eval_samples
    return {"name": cfg.protocol, "params": params}


def _versions_safe_ci(y_true, y_score, task, metrics, cfg, seed, counts) -> dict[str, Any]:
    from eval_suite.stats import bootstrap_ci

    names = [m for m in metrics if m not in _NON_SCALAR]
    ci = bootstrap_ci(
        y_true,
        y_score,
        task=task,
        metrics=tuple(names),
        n_resamples=cfg.n_bootstrap,
        seed=seed,
        train_class_counts=counts,
    )
    return {k: [float(v[0]), float(v[1])] for k, v in ci.items()}


# ------------------------------------------------------------------------------------ evaluate
def evaluate(config: EvalConfig) -> list[dict[str, Any]]:
    """Run ``config`` for every seed; return the records (finished seeds are loaded, not rerun)."""
    from eval_suite.results import find_record, make_record, record_key, to_jsonable, write_record

    cfg = dataclasses.replace(config, seeds=[int(s) for s in config.seeds])
    _validate(cfg)
    data = _load_data(cfg)
    _validate(cfg, data.task)
    policy = regimes.normalise_policy(cfg.sampler, cfg.loss, cfg.augment, cfg.mixup)
    regime = {
        "label_fraction": float(cfg.label_fraction),
        "imbalance_ratio": _ratio_text(regimes.parse_imbalance_ratio(cfg.imbalance_ratio)),
    }
    random_init = cfg.random_init or cfg.protocol == "scratch"
    device = resolve_device(cfg.device)
    extractor = _load_extractor(cfg.checkpoint, random_init, cfg.seeds[0])
    adapter = _check_fit(extractor, data)
    checkpoint = _checkpoint_block(extractor, cfg, adapter, random_init)
    protocol = _protocol_block(cfg)
    results_dir = Path(cfg.results_dir)
    segmentation = data.task == "segmentation"
    num_classes = len(data.class_names)
    train = data.dsd["train"]
    feature_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    records = []
    for seed in cfg.seeds:
        t_start = time.perf_counter()
        if segmentation:
            subset_idx = np.arange(len(train))
            if cfg.max_train_samples is not None:
                subset_idx = subset_idx[: cfg.max_train_samples]
            counts: list[int] = []
        else:
            subset = regimes.select_train_rows(
                train,
                label_fraction=cfg.label_fraction,
                imbalance_ratio=cfg.imbalance_ratio,
                seed=seed,
                max_train_samples=cfg.max_train_samples,
                class_names=data.class_names,
            )
            subset_idx, counts = subset.indices, subset.class_counts
        dataset_block = {
            "name": data.name,
            "image_size": data.image_size,
            "spatial_dims": data.spatial_dims,
            "task": data.task,
            "num_classes": num_classes,
            "class_names": data.class_names,
            "train_split": "train",
            "eval_split": "test",
            "n_train": int(len(subset_idx)),
            "n_eval": len(data.dsd["test"]),
            "train_class_counts": counts,
        }
        record_id = record_key(
            checkpoint=checkpoint,
            dataset=dataset_block,
            protocol=protocol,
            regime=regime,
            policy=policy,
            seed=seed,
        )
        existing = find_record(results_dir, record_id)
        if existing is not None:
            logger.info(f"seed {seed}: record {record_id[:12]} exists in {results_dir}, skipping")
            records.append(existing)
            continue
        timings: dict[str, float] = {}
        fit_info: dict[str, Any] = {}
        examples: dict[str, np.ndarray] | None = None
        train_rows = train.select(subset_idx) if len(subset_idx) != len(train) else train
        if segmentation:
            if seed != cfg.seeds[0] or extractor is None:
                extractor = _load_extractor(cfg.checkpoint, random_init, seed)
            from eval_suite.protocols.segmentation import run_segmentation

            pooled, per_image, fit_info = run_segmentation(
                extractor,
                train_rows,
                data.dsd["validation"],
                data.dsd["test"],
                recipe=_recipe(cfg, segmentation=True),
                policy=policy,
                seed=seed,
                skip_connections=cfg.skip_connections,
                decoder_channels=cfg.decoder_channels,
                patch_size=cfg.patch_size,
                patches_per_image=cfg.patches_per_image,
                overlap=cfg.sw_overlap,
                device=device,
            )
            extractor = None  # trained in place: reload for the next seed
            examples = fit_info.pop("test_examples", None)
            metrics = pooled
            from eval_suite.stats import bootstrap_ci_per_image

            columns = {k: [float(m[k]) for m in per_image] for k in per_image[0]}
            ci = bootstrap_ci_per_image(columns, n_resamples=cfg.n_bootstrap, seed=seed)
            ci95 = {k: [float(v[0]), float(v[1])] for k, v in ci.items()}
            test_outputs: dict[str, Any] = {"per_image": columns}
        else:
            from eval_suite.metrics import compute_classification_metrics

            if cfg.protocol in FEATURE_PROTOCOLS:
                y_true, y_score, fit_info = _run_feature_protocol(
                    cfg, extractor, data, subset_idx, counts, policy, seed, device, feature_cache
                )
            else:
                if seed != cfg.seeds[0] or extractor is None:
                    extractor = _load_extractor(cfg.checkpoint, random_init, seed)
                from eval_suite.protocols.finetune import run_finetune

                y_true, y_score, fit_info = run_finetune(
                    extractor,
                    train_rows,
                    data.dsd["validation"],
                    data.dsd["test"],
                    mode=cfg.protocol,
                    task=data.task,
                    num_classes=num_classes,
                    train_class_counts=counts,
                    recipe=_recipe(cfg),
                    policy=policy,
                    seed=seed,
                    device=device,
                    num_workers=cfg.num_workers,
                )
                extractor = None  # finetuned in place: reload for the next seed
            t_metrics = time.perf_counter()
            metrics = compute_classification_metrics(
                y_true, y_score, task=data.task, train_class_counts=counts, metrics=cfg.metrics
            )
            ci95 = _versions_safe_ci(y_true, y_score, data.task, list(metrics), cfg, seed, counts)
            timings["metrics_s"] = time.perf_counter() - t_metrics
            test_outputs = {"y_true": y_true.tolist(), "y_score": np.round(y_score, 6).tolist()}
        for key in ("features_s", "train_s", "eval_s"):
            if key in fit_info:
                timings[key] = float(fit_info.pop(key))
        timings["total_s"] = time.perf_counter() - t_start
        record = make_record(
            checkpoint=checkpoint,
            dataset=dataset_block,
            protocol=protocol,
            regime=regime,
            policy=policy,
            seed=seed,
            metrics=metrics,
            ci95=ci95,
            test_outputs=test_outputs,
            timings=timings,
        )
        if record["record_id"] != record_id:  # both must hash the same identity, or resuming breaks
            logger.warning("record id computed before the run differs from make_record's; resuming may rerun")
        record["fit"] = to_jsonable(fit_info)  # not identifying: best epoch, chosen C, history
        write_record(record, results_dir)
        if examples is not None:  # segmentation only
            _write_overlays(examples, results_dir, record["record_id"], data.name)
        records.append(record)
    return records


def _write_overlays(examples: dict[str, np.ndarray], results_dir: Path, record_id: str, dataset: str) -> None:
    """Prediction-vs-truth pictures of the first test images as ``overlays/<record_id>_<i>.png``
    (the leaderboard copies them into its plots). A failed picture never fails the evaluation."""
    from eval_suite.leaderboard.plots import plot_segmentation_overlay

    for i in range(len(examples["pred"])):
        try:
            plot_segmentation_overlay(
                examples["images"][i],
                examples["mask"][i],
                examples["pred"][i],
                examples["fov"][i],
                results_dir / "overlays" / f"{record_id}_{i}.png",
                title=f"{dataset} test image {i + 1}",
            )
        except Exception as err:  # noqa: BLE001 - plotting is a by-product of the evaluation
            logger.warning(f"overlay {i} of record {record_id[:12]} not written: {err}")


def _ratio_text(ratio: str | float) -> str:
    return ratio if isinstance(ratio, str) else f"{ratio:g}"


def _run_feature_protocol(
    cfg: EvalConfig,
    extractor: Any,
    data: _Data,
    subset_idx: np.ndarray,
    counts: list[int],
    policy: dict[str, Any],
    seed: int,
    device: str,
    cache: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Linear probe or kNN on the cached features of the full splits, restricted to the regime's rows."""
    from eval_suite.features import cache_key, cached_features, default_cache_dir

    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    t0 = time.perf_counter()
    hits = []
    # A capped run (tests, demos) embeds only its own rows; otherwise the full split is embedded
    # once and every regime/seed indexes into it.
    capped = cfg.max_train_samples is not None
    splits = {"train": data.dsd["train"].select(subset_idx) if capped else data.dsd["train"]}
    splits.update(validation=data.dsd["validation"], test=data.dsd["test"])
    if capped:
        cache.pop("train", None)
    for split in ("train", "validation", "test"):
        if split not in cache:
            extra = {"init_seed": cfg.seeds[0]} if extractor.info.random_init else None
            key = cache_key(
                extractor,
                splits[split],
                dataset=data.name,
                split_name=split,
                image_size=data.image_size,
                extra=extra,
            )
            feats, labels, hit = cached_features(
                extractor,
                splits[split],
                cache_dir=cache_dir,
                key=key,
                device=device,
                desc=f"features {split}",
            )
            cache[split] = (feats, labels)
            hits.append(hit)
    features_s = time.perf_counter() - t0
    rows = slice(None) if capped else subset_idx
    xtr, ytr = cache["train"][0][rows], cache["train"][1][rows]
    kind, _ = regimes.parse_sampler(policy["sampler"])
    if kind != "none":  # a sampler's draw (epoch 0) decides which rows the one-shot fit sees
        sampler = regimes.make_sampler(policy["sampler"], ytr, seed)
        rows = sampler.epoch_indices()
        xtr, ytr = xtr[rows], ytr[rows]
    num_classes = len(data.class_names)
    t1 = time.perf_counter()
    if cfg.protocol == "linear":
        from eval_suite.protocols.linear import run_linear

        y_score, info = run_linear(
            (xtr, ytr),
            cache["validation"],
            cache["test"][0],
            task=data.task,
            num_classes=num_classes,
            seed=seed,
            class_weight="balanced" if policy["loss"] == "weighted" else None,
            select_metric=cfg.select_metric,
        )
    else:
        from eval_suite.protocols.knn import run_knn

        y_score = run_knn((xtr, ytr), cache["test"][0], num_classes=num_classes, k=cfg.knn_k)
        info = {}
    info.update(
        features_s=features_s, train_s=time.perf_counter() - t1, eval_s=0.0, features_cached=all(hits)
    )
    return cache["test"][1], y_score, info


# -------------------------------------------------------------------------------------- compare
def baseline_config(config: EvalConfig) -> EvalConfig:
    """The config of ``config.compare_to``: ``scratch`` = same recipe at random init, else another spec."""
    target = config.compare_to
    if not target:
        raise ConfigError("no baseline to compare to", "pass --compare-to scratch or a checkpoint spec")
    if target == "scratch":
        if config.protocol == "segmentation":
            return dataclasses.replace(config, random_init=True, compare_to=None, name=None)
        return dataclasses.replace(config, protocol="scratch", compare_to=None, name=None)
    return dataclasses.replace(config, checkpoint=target, compare_to=None, name=None)


def compare(
    records: list[dict[str, Any]], baseline_records: list[dict[str, Any]], metric: str = "balanced_accuracy"
) -> dict[str, Any]:
    """Paired bootstrap of ``metric`` (records - baseline, paired by seed) and per-class recall deltas."""
    from eval_suite.stats import paired_bootstrap, paired_class_deltas

    result = dict(paired_bootstrap(records, baseline_records, metric))
    result["metric"] = metric
    segmentation = bool(records) and records[0].get("dataset", {}).get("task") == "segmentation"
    # segmentation records carry per-image metrics, not per-class recall
    result["class_deltas"] = None if segmentation else paired_class_deltas(records, baseline_records)
    return result


def evaluate_with_comparison(
    config: EvalConfig, metric: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any] | None]:
    """``evaluate(config)``, and when ``config.compare_to`` is set the baseline and the comparison."""
    records = evaluate(config)
    if not config.compare_to:
        return records, None, None
    baseline = evaluate(baseline_config(config))
    if metric is None:
        metric = (
            "dice" if records and records[0]["dataset"]["task"] == "segmentation" else "balanced_accuracy"
        )
    return records, baseline, compare(records, baseline, metric)
