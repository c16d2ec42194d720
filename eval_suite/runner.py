"""Run an evaluation: any checkpoint x dataset x protocol x regime x policy x seeds -> result records.

With ``corruption`` set, each seed's fitted model (probe, finetuned network, decoder) also scores
corrupted copies of the test split (``hfssl.data.corruptions``; validation and training stay
clean): one extra record per corruption and severity, with ``corruption = {name, severity, seed}``.

``evaluate(EvalConfig(...))`` returns one record per seed (schema: ``eval_suite/README.md``), each
written atomically to ``results_dir/<record_id>.json``. A seed whose record id already exists there
is loaded, not recomputed, so interrupted grids resume where they stopped. ``compare(records,
baseline_records, metric)`` gives the paired bootstrap difference against a baseline (normally the
``scratch`` protocol with the same seeds) and the per-class recall deltas.

The runner is plumbing: load the data and the extractor, then per seed select the training rows,
run the protocol, score it and write the record. What a protocol does lives in its class in
``eval_suite.protocols`` (looked up by name in ``PROTOCOLS``, here and nowhere else).
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
from eval_suite.protocols import PROTOCOLS
from eval_suite.protocols.base import EvalData, Outcome, Protocol, TestVariant
from hfssl.errors import CheckpointError, ConfigError, DataError
from hfssl.utils.io import ensure_dir
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


@dataclass
class EvalConfig:
    """Everything that defines an evaluation run (also the ``hfssl evaluate`` options)."""

    checkpoint: str = field(
        metadata={"help": "checkpoint spec: hfssl checkpoint folder, Hub repo id, timm:NAME, ..."}
    )
    dataset: str = field(default="breastmnist", metadata={"help": "data source: a MedMNIST subset or drive"})
    image_size: list[int] = field(
        default_factory=lambda: [28],
        metadata={
            "help": "MedMNIST image size(s) (28, 64, 128, 224); several sizes = a resolution sweep of "
            "the same checkpoint, records per size; ignored for drive"
        },
    )
    input_size: str = field(
        default="data",
        metadata={
            "help": "side the model sees: data (the images as they are), auto (the model's own input "
            "size, e.g. 224 for DINOv2) or N px"
        },
    )
    resize: str = field(
        default="auto",
        metadata={
            "help": "how images reach --input-size: auto (the model's own interpolation), bilinear, "
            "bicubic or pad (zero-padding, centred)"
        },
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
        default="none",
        metadata={
            "help": "none, S1..S6 (the paper's augmentation ladder) or corrupt:P (a random corruption of "
            "the dataset's modality, severity 1-5, with probability P)"
        },
    )
    mixup: float = field(default=0.0, metadata={"help": "mixup alpha (0 = off)"})
    corruption: str | None = field(
        default=None,
        metadata={
            "help": "test-time corruption of the TEST split only (validation stays clean): NAME[:SEVERITY] "
            "(comma-separated; no severity = 1-5) or all (every corruption of the dataset's modality x "
            "severities 1-5); one fit, one extra record per corruption and severity "
            "(hfssl.data.corruptions lists them)"
        },
    )
    corruption_seed: int = field(
        default=0, metadata={"help": "seed of the corruptions' randomness (noise, blur direction, slices)"}
    )
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
    ordinal_head: str | None = field(
        default=None,
        metadata={
            "help": "graded (ordinal) tasks: regression (one regressed grade), classification (K-way "
            "softmax) or cumulative (K-1 rank-consistent logits, CORAL); default "
            "hfssl.models.DEFAULT_ORDINAL_HEAD"
        },
    )
    tune_thresholds: bool = field(
        default=True,
        metadata={"help": "regression ordinal head: tune the grade cut points on validation for QWK"},
    )
    knn_k: int = field(default=20, metadata={"help": "neighbours of the knn protocol"})
    lora_rank: int = field(default=8, metadata={"help": "lora protocol: adapter rank r"})
    lora_alpha: float = field(
        default=16.0, metadata={"help": "lora protocol: scaling alpha (update x alpha/r)"}
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "lora protocol: dropout on the adapter input"})
    lora_targets: str = field(
        default="auto",
        metadata={
            "help": "lora protocol: auto/attention (query+value projections), conv, linear, "
            "attention+conv, or comma-separated module names"
        },
    )
    save_adapter: str | None = field(
        default=None,
        metadata={
            "help": "lora protocol: write the trained adapter (peft format) here (DIR/seedN for several seeds)"
        },
    )
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
    mixed_precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 on GPUs and on CPUs where bf16 beats fp32, else fp32), no, bf16 or fp16"
        },
    )
    channels_last: bool | None = field(
        default=None, metadata={"help": "channels-last memory format (default: what the resolver picks)"}
    )


# -------------------------------------------------------------------------------------- dataset
def _load_data(cfg: EvalConfig) -> EvalData:
    from hfssl.data import describe, load_source

    is_drive = cfg.dataset.strip().lower() == "drive"
    if is_drive:
        dsd = load_source("drive", data_dir=cfg.data_dir, validation_size=4, seed=0)
    else:
        dsd = load_source(cfg.dataset, image_size=_image_sizes(cfg)[0], data_dir=cfg.data_dir)
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
    return EvalData(
        dsd=dsd,
        name=desc.name.split(":")[-1],
        task=task,
        spatial_dims=desc.spatial_dims,
        in_chans=desc.in_chans,
        class_names=list(desc.class_names),
        image_size=desc.image_size if isinstance(desc.image_size, int) else list(desc.image_size),
    )


def _dataset_block(data: EvalData, rows: np.ndarray, counts: list[int]) -> dict[str, Any]:
    return {
        "name": data.name,
        "image_size": data.image_size,
        "spatial_dims": data.spatial_dims,
        "task": data.task,
        "num_classes": len(data.class_names),
        "class_names": data.class_names,
        "train_split": "train",
        "eval_split": "test",
        "n_train": int(len(rows)),
        "n_eval": len(data.dsd["test"]),
        "train_class_counts": counts,
    }


# ---------------------------------------------------------------------------------- checkpoint
def _load_extractor(spec: str, random_init: bool, seed: int):
    import torch

    from hfssl.hub import load_feature_extractor

    torch.manual_seed(seed)  # random init (scratch, timm names) is then reproducible per seed
    return load_feature_extractor(spec, random_init=random_init)


def _check_fit(extractor: Any, data: EvalData) -> str:
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


# ---------------------------------------------------------------------------- input size / sweeps
RESIZE_CHOICES = ("auto", "bilinear", "bicubic", "pad")


def _image_sizes(cfg: EvalConfig) -> list[int]:
    """``cfg.image_size`` as a list of distinct ints (an int or a list is accepted)."""
    raw = cfg.image_size if isinstance(cfg.image_size, (list, tuple)) else [cfg.image_size]
    try:
        sizes = [int(s) for s in raw]
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"--image-size {raw} is not a list of integers", "pass e.g. --image-size 28 64"
        ) from err
    if not sizes:
        raise ConfigError("no --image-size given", "pass e.g. --image-size 28 or --image-size 28 64")
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"--image-size {sizes} repeats a size", "pass each size once")
    return sizes


def _input_size_option(cfg: EvalConfig) -> int | str:
    """``data``, ``auto`` or a positive int from ``cfg.input_size``; checks ``cfg.resize`` too."""
    if str(cfg.resize).strip().lower() not in RESIZE_CHOICES:
        raise ConfigError(f"unknown --resize {cfg.resize!r}", f"use one of: {', '.join(RESIZE_CHOICES)}")
    text = str(cfg.input_size).strip().lower()
    if text in ("data", "auto"):
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ConfigError(
        f"--input-size {cfg.input_size!r} is not data, auto or a positive number of pixels",
        "pass data, auto or e.g. 224",
    )


def _check_sizes_available(cfg: EvalConfig, sizes: list[int]) -> None:
    """Before a sweep computes anything: every size's data file is there (or downloadable)."""
    from hfssl.data.sources import parse_spec

    kind, name = parse_spec(cfg.dataset)
    if kind not in ("medmnist", "graded"):
        raise ConfigError(
            f"a resolution sweep (--image-size {' '.join(map(str, sizes))}) needs a MedMNIST dataset, not {cfg.dataset}",
            "pass one --image-size, or a MedMNIST subset as --dataset",
        )
    if cfg.compare_to:
        raise ConfigError(
            "--compare-to pairs seeds of one image size; a sweep has several",
            "run --compare-to with one --image-size at a time",
        )
    from hfssl.data.medmnist import fetch_medmnist

    for size in sizes:
        fetch_medmnist(name, size, cfg.data_dir)  # a missing file: one error naming it and where to put it


def _side(data: EvalData) -> int:
    size = data.image_size
    return int(size if isinstance(size, int) else max(size))


def _configure_input(extractor: Any, cfg: EvalConfig, data: EvalData) -> dict[str, Any] | None:
    """Apply ``--input-size``/``--resize`` to ``extractor``; the resolved ``{input_size, resize}``,
    or ``None`` for ``data`` (images as they are). Refuses sizes the model cannot take, after a
    one-image forward pass at that size."""
    import torch

    option = _input_size_option(cfg)
    if option == "data":
        extractor.set_input_size(None)
        return None
    spec = extractor.info.spec
    if data.task == "segmentation":
        raise ConfigError(
            "--input-size applies to classification; segmentation works on DRIVE's own pixels",
            "drop --input-size for --protocol segmentation",
        )
    native = extractor.image_size
    if option == "auto":
        if native is None:
            raise ConfigError(
                f"{spec} declares no input size of its own, so --input-size auto has nothing to use",
                "pass --input-size N (e.g. 224) or data",
            )
        size = int(native)
    else:
        size = int(option)
    patch = extractor.info.details.get("patch_size")
    valid = f"data, auto ({native} px)" if native else "data"
    if patch and size % int(patch):
        raise ConfigError(
            f"{spec} cannot take {size} px input: its {patch} px patches do not tile it",
            f"use --input-size {valid} or a multiple of {patch}",
        )
    side = _side(data)
    resize = str(cfg.resize).strip().lower()
    if resize == "pad" and size < side:
        raise ConfigError(
            f"--resize pad cannot fit {side} px images into {size} px",
            "use a larger --input-size or --resize bilinear",
        )
    extractor.set_input_size(size, resize)
    probe = torch.zeros(1, data.in_chans, *([side] * data.spatial_dims))
    training = extractor.training
    try:
        with torch.no_grad():
            extractor.eval().embed(probe)
    except Exception as err:  # the model's own complaint, shortened into the one-line error
        first = " ".join(str(err).split())[:200]
        raise ConfigError(
            f"{spec} cannot take {size} px input ({type(err).__name__}: {first})", f"use --input-size {valid}"
        ) from err
    finally:
        extractor.train(training)
    return {"input_size": size, "resize": extractor.resize}


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


def _protocol_class(cfg: EvalConfig, task: str | None = None) -> type[Protocol]:
    """The configured protocol's class, after the checks that need no data (``task=None``) or the
    dataset's task: the one place where a protocol name is resolved."""
    protocol = PROTOCOLS.get(cfg.protocol)
    if protocol is None:
        raise ConfigError(f"unknown protocol {cfg.protocol!r}", f"use one of: {', '.join(PROTOCOLS)}")
    _image_sizes(cfg)
    _input_size_option(cfg)
    if cfg.save_adapter and cfg.protocol != "lora":
        raise ConfigError(
            f"--save-adapter needs --protocol lora (got {cfg.protocol})",
            "drop --save-adapter or use --protocol lora",
        )
    if not cfg.seeds:
        raise ConfigError("no seeds given", "pass e.g. --seeds 0 1 2")
    if cfg.corruption:  # names, severities and the dataset's modality, before any data is read
        from hfssl.data.corruptions import parse_corruption

        parse_corruption(cfg.corruption, cfg.dataset)
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds {cfg.seeds} repeat a value", "pass distinct seeds")
    protocol.validate(cfg, task)
    return protocol


def _resolve_ordinal_head(cfg: EvalConfig, data: EvalData) -> EvalConfig:
    """``cfg`` with the ordinal head of the run filled in (ordinal tasks, protocols with a head),
    after refusing a head where it cannot apply and the policies the regression head cannot take."""
    from eval_suite.protocols.ordinal import resolve_head

    protocol = PROTOCOLS[cfg.protocol]
    if not protocol.uses_ordinal_head:
        if cfg.ordinal_head is not None:
            raise ConfigError(
                f"protocol {cfg.protocol!r} has no ordinal head (it gives per-grade scores itself)",
                "drop --ordinal-head, or use --protocol linear/finetune/frozen/warmup/scratch",
            )
        return cfg
    head = resolve_head(cfg.ordinal_head, data.task, len(data.class_names))
    if head == "regression":
        policy = regimes.normalise_policy(cfg.sampler, cfg.loss, cfg.augment, cfg.mixup)
        if policy["loss"] != "ce" or policy["mixup"] > 0:
            raise ConfigError(
                "class-weighted/focal losses and mixup have no meaning for a regressed grade "
                "(--ordinal-head regression)",
                "use --ordinal-head classification or cumulative, or --loss ce --mixup 0",
            )
    return dataclasses.replace(cfg, ordinal_head=head)


def _test_variants(cfg: EvalConfig, data: EvalData) -> list[TestVariant]:
    """The corrupted test splits of ``cfg.corruption`` (none without it), after checking that the
    corruptions (and a ``corrupt:P`` augmentation) exist for the dataset's modality and dimensionality."""
    from hfssl.data.corruptions import modality_of, parse_corruption

    if str(cfg.augment).startswith("corrupt"):
        modality_of(data.name)  # a dataset without a corruption set cannot take --augment corrupt:P
    if not cfg.corruption:
        return []
    pairs = parse_corruption(cfg.corruption, data.name, data.spatial_dims)
    modality = modality_of(data.name)
    return [TestVariant(n, s, int(cfg.corruption_seed), modality, data.dsd["test"]) for n, s in pairs]


def _ratio_text(ratio: str | float) -> str:
    return ratio if isinstance(ratio, str) else f"{ratio:g}"


# ------------------------------------------------------------------------------------ evaluate
def evaluate(config: EvalConfig) -> list[dict[str, Any]]:
    """Run ``config`` for every seed; return the records (finished seeds are loaded, not rerun).

    Several ``image_size`` values are a resolution sweep: every size's data file is checked first,
    then the same checkpoint is evaluated at each size in turn (records per size and seed)."""
    sizes = _image_sizes(config)
    if len(sizes) > 1:
        _protocol_class(config)
        _check_sizes_available(config, sizes)
        records: list[dict[str, Any]] = []
        for size in sizes:
            logger.info(f"resolution sweep: {config.dataset} at {size} px")
            records += _evaluate_one(dataclasses.replace(config, image_size=size))
        return records
    return _evaluate_one(dataclasses.replace(config, image_size=sizes[0]))


def _evaluate_one(config: EvalConfig) -> list[dict[str, Any]]:
    """``evaluate`` at one image size."""
    from eval_suite.results import find_record, make_record, record_key, to_jsonable, write_record

    cfg = dataclasses.replace(config, seeds=[int(s) for s in config.seeds])
    _protocol_class(cfg)
    ensure_dir(cfg.results_dir, "--results-dir")  # before any compute: an unusable folder fails first
    data = _load_data(cfg)
    cfg = _resolve_ordinal_head(cfg, data)
    protocol_class = _protocol_class(cfg, data.task)
    variants = _test_variants(cfg, data)
    random_init = cfg.random_init or protocol_class.random_init
    device = resolve_device(cfg.device)
    protocol = protocol_class(cfg)
    protocol.test_variants = variants

    def load(seed: int) -> tuple[Any, str, dict[str, Any] | None]:
        """The extractor for ``seed``, its channel adapter and its resolved input size."""
        extractor = _load_extractor(cfg.checkpoint, random_init, seed)
        adapter = _check_fit(extractor, data)
        resolved = _configure_input(extractor, cfg, data)
        if hasattr(protocol, "check_targets"):
            protocol.check_targets(extractor)  # LoRA: no matching module is an error before training
        return extractor, adapter, resolved

    extractor, adapter, resolved_input = load(cfg.seeds[0])
    results_dir = Path(cfg.results_dir)
    regime = {
        "label_fraction": float(cfg.label_fraction),
        "imbalance_ratio": _ratio_text(regimes.parse_imbalance_ratio(cfg.imbalance_ratio)),
    }
    protocol_block = protocol.block()
    if resolved_input is not None:  # identifying only when set, so earlier records keep their ids
        protocol_block["params"].update(resolved_input)
    # the identifying fields shared by every seed; with the seed's dataset block they make the id
    shared = {
        "checkpoint": _checkpoint_block(extractor, cfg, adapter, random_init),
        "protocol": protocol_block,
        "regime": regime,
        "policy": protocol.policy,
    }
    input_block = resolved_input or {"input_size": data.image_size, "resize": "none"}
    records = []
    for seed in cfg.seeds:
        t_start = time.perf_counter()
        rows, counts = protocol.train_rows(data, seed)
        identity = {**shared, "dataset": {**_dataset_block(data, rows, counts), **input_block}, "seed": seed}
        record_id = record_key(**identity)
        variant_ids = {v.key: record_key(**identity, corruption=v.block()) for v in variants}
        existing = find_record(results_dir, record_id)
        stored = {k: find_record(results_dir, rid) for k, rid in variant_ids.items()}
        if existing is not None and all(r is not None for r in stored.values()):
            logger.info(f"seed {seed}: record {record_id[:12]} exists in {results_dir}, skipping")
            records.append(existing)
            records.extend(r for r in stored.values() if r is not None)
            continue
        if protocol.trains_extractor and seed != cfg.seeds[0]:
            extractor = load(seed)[0]  # the last seed trained it
        outcome = protocol.run(data, extractor, rows, counts, seed, device)
        t_metrics = time.perf_counter()
        metrics, ci95, test_outputs = protocol.score(outcome, data, counts, seed)
        timings = {"metrics_s": time.perf_counter() - t_metrics}
        timings.update(
            {k: float(outcome.fit.pop(k)) for k in ("features_s", "train_s", "eval_s") if k in outcome.fit}
        )
        timings["total_s"] = time.perf_counter() - t_start
        parameters = outcome.fit.pop("parameters", None)
        record = make_record(
            **identity, metrics=metrics, ci95=ci95, test_outputs=test_outputs, timings=timings
        )
        record["fit"] = to_jsonable(outcome.fit)  # not identifying: best epoch, chosen C, history
        if parameters is not None:  # trainable/total parameter counts (not identifying)
            record["parameters"] = _parameters_block(parameters)
        write_record(record, results_dir)
        _write_overlays(outcome, results_dir, record["record_id"], data.name)
        records.append(record)
        for variant in variants:  # the same fitted model on each corrupted test split
            v_outcome = outcome.variants.get(variant.key)
            if v_outcome is None:  # pragma: no cover - every protocol scores its test variants
                raise RuntimeError(f"protocol {protocol.name} returned no outcome for {variant.key}")
            t_v = time.perf_counter()
            v_metrics, v_ci95, v_outputs = protocol.score(v_outcome, data, counts, seed)
            v_record = make_record(
                **identity,
                corruption=variant.block(),
                metrics=v_metrics,
                ci95=v_ci95,
                test_outputs=v_outputs,
                timings={"metrics_s": time.perf_counter() - t_v},
            )
            # the fit is the clean record's: name it instead of copying its history
            v_record["fit"] = {"clean_record_id": record["record_id"]}
            write_record(v_record, results_dir)
            records.append(v_record)
    return records


def _parameters_block(counts: dict[str, Any]) -> dict[str, Any]:
    """The record's ``parameters``: trainable and total counts and the trainable share (%)."""
    trainable, total = int(counts.get("trainable", 0)), int(counts.get("total", 0))
    share = 100.0 * trainable / total if total else 0.0
    return {"trainable": trainable, "total": total, "trainable_percent": round(share, 4)}


def _write_overlays(outcome: Outcome, results_dir: Path, record_id: str, dataset: str) -> None:
    """Prediction-vs-truth pictures of the outcome's example test images (segmentation) as
    ``overlays/<record_id>_<i>.png`` (the leaderboard copies them into its plots). A failed picture
    never fails the evaluation."""
    examples = outcome.examples
    if examples is None:
        return
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


# -------------------------------------------------------------------------------------- compare
def baseline_config(config: EvalConfig) -> EvalConfig:
    """The config of ``config.compare_to``: ``scratch`` = same recipe at random init, else another spec."""
    target = config.compare_to
    if not target:
        raise ConfigError("no baseline to compare to", "pass --compare-to scratch or a checkpoint spec")
    config = dataclasses.replace(config, compare_to=None, name=None)
    if target == "scratch":
        return _protocol_class(config).scratch_config(config)
    return dataclasses.replace(config, checkpoint=target)


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
    """``evaluate(config)``, and when ``config.compare_to`` is set the baseline and the comparison
    (of the clean test records; corrupted ones are compared by ``eval_suite.robustness``)."""
    records = evaluate(config)
    if not config.compare_to:
        return records, None, None
    baseline = evaluate(baseline_config(config))
    if metric is None:
        metric = (
            "dice" if records and records[0]["dataset"]["task"] == "segmentation" else "balanced_accuracy"
        )
    clean = [r for r in records if r.get("corruption") is None]
    clean_baseline = [r for r in baseline if r.get("corruption") is None]
    return records, baseline, compare(clean, clean_baseline, metric)
