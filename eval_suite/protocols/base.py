"""The protocol interface and what protocols share.

A protocol turns (data, feature extractor, training rows, seed) into test-split predictions or
metrics. :class:`Protocol` is the interface the runner drives; :class:`ClassificationProtocol`
scores classification predictions (metrics + bootstrap CIs); :class:`FeatureProtocol` runs a
one-shot fit on cached frozen features (``linear``, ``knn``). Each concrete protocol lives in its
own module and is registered by name in ``eval_suite.protocols.PROTOCOLS``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from eval_suite import regimes
from hfssl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from eval_suite.runner import EvalConfig
    from hfssl.hub import FeatureExtractor
    from hfssl.training import RuntimePlan

# bootstrap CIs for the scalar metrics (per_class / group_accuracy are not resampled)
_NON_SCALAR = ("per_class", "group_accuracy", "confusion_matrix")


@dataclass
class EvalData:
    """A loaded dataset with its record description (``dataset`` block fields)."""

    dsd: Any
    name: str
    task: str  # binary | multiclass | ordinal | segmentation
    spatial_dims: int
    in_chans: int
    class_names: list[str]
    image_size: Any


@dataclass
class TestVariant:
    """A corrupted copy of the test split (``--corruption``), built on demand: the protocol scores
    it with the model it fitted for the clean test split (train once, test many)."""

    name: str
    severity: int
    seed: int
    modality: str
    clean: Any  # the clean test split (a ``datasets.Dataset``)

    @property
    def key(self) -> str:
        return f"{self.name}:{self.severity}"

    def block(self) -> dict[str, Any]:
        """The record's ``corruption`` field."""
        return {"name": self.name, "severity": self.severity, "seed": self.seed}

    def dataset(self) -> Any:
        from hfssl.data.corruptions import corrupt_dataset

        return corrupt_dataset(self.clean, self.name, self.severity, modality=self.modality, seed=self.seed)


@dataclass
class Outcome:
    """What :meth:`Protocol.run` returns: test predictions (classification) or metrics (segmentation).

    ``fit`` is the non-identifying fit report (best epoch, chosen C, history); its ``features_s``,
    ``train_s`` and ``eval_s`` entries move to the record's timings."""

    fit: dict[str, Any] = field(default_factory=dict)
    y_true: np.ndarray | None = None
    y_score: np.ndarray | None = None
    metrics: dict[str, Any] | None = None
    per_image: list[dict[str, float]] | None = None
    examples: dict[str, np.ndarray] | None = None  # test images + predictions for overlay pictures
    variants: dict[str, Outcome] = field(default_factory=dict)  # TestVariant.key -> its test outcome


class Protocol:
    """One evaluation protocol, built per run from the :class:`~eval_suite.runner.EvalConfig`.

    Class attributes tell the runner how to drive it: ``needs_features`` (fits on cached frozen
    features), ``trains_extractor`` (``run`` trains the extractor in place, so the runner reloads it
    for every further seed), ``random_init`` (the protocol implies a randomly initialised extractor).
    """

    name: ClassVar[str]
    task_kind: ClassVar[str] = "classification"  # or "segmentation": which datasets it accepts
    needs_features: ClassVar[bool] = False
    trains_extractor: ClassVar[bool] = False
    random_init: ClassVar[bool] = False
    uses_ordinal_head: ClassVar[bool] = False  # takes --ordinal-head on graded labels

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        self.policy = regimes.normalise_policy(cfg.sampler, cfg.loss, cfg.augment, cfg.mixup)
        # corrupted test splits (set by the runner); ``run`` fills ``Outcome.variants`` for each
        self.test_variants: list[TestVariant] = []

    @classmethod
    def validate(cls, cfg: EvalConfig, task: str | None = None) -> None:
        """Refuse configurations the protocol cannot run: ``task=None`` before the data is loaded
        (cheap checks), then again with the dataset's task."""
        if task is None:
            regimes.normalise_policy(cfg.sampler, cfg.loss, cfg.augment, cfg.mixup)  # refuses bad names
            return
        if task == "segmentation" and cls.task_kind != "segmentation":
            raise ConfigError(
                f"DRIVE is a segmentation dataset; protocol {cfg.protocol!r} is for classification",
                "use --protocol segmentation",
            )
        if task != "segmentation" and cls.task_kind == "segmentation":
            raise ConfigError(
                f"the {cls.name} protocol needs a segmentation dataset",
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

    @classmethod
    def scratch_config(cls, cfg: EvalConfig) -> EvalConfig:
        """``cfg``'s scratch baseline: the same protocol and recipe from a randomly initialised
        extractor (classification protocols override this with the ``scratch`` protocol)."""
        return dataclasses.replace(cfg, random_init=True)

    def params(self) -> dict[str, Any]:
        """The protocol's own parameters for the record (identifying: they enter the record id)."""
        raise NotImplementedError

    def block(self) -> dict[str, Any]:
        """The record's ``protocol`` block: name and params, plus the row caps of capped runs."""
        params = self.params()
        if self.cfg.max_train_samples is not None:
            params["max_train_samples"] = self.cfg.max_train_samples
        if self.cfg.max_eval_samples is not None:
            params["max_eval_samples"] = self.cfg.max_eval_samples
        return {"name": self.name, "params": params}

    def train_rows(self, data: EvalData, seed: int) -> tuple[np.ndarray, list[int]]:
        """Indices of the training rows this seed uses, and their class counts."""
        raise NotImplementedError

    def run(
        self,
        data: EvalData,
        extractor: FeatureExtractor,
        rows: np.ndarray,
        counts: list[int],
        seed: int,
        device: str,
    ) -> Outcome:
        """Fit on ``rows`` of the train split (model selection on validation), predict the test split."""
        raise NotImplementedError

    def score(
        self, outcome: Outcome, data: EvalData, counts: list[int], seed: int
    ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
        """``(metrics, ci95, test_outputs)`` of the record from ``outcome``."""
        raise NotImplementedError


class ClassificationProtocol(Protocol):
    """Protocols that predict class scores: regime-selected train rows, classification metrics."""

    @classmethod
    def scratch_config(cls, cfg: EvalConfig) -> EvalConfig:
        # every classification protocol is compared with the ``scratch`` protocol (end-to-end
        # training from random init with the same recipe)
        return dataclasses.replace(cfg, protocol="scratch")

    def train_rows(self, data: EvalData, seed: int) -> tuple[np.ndarray, list[int]]:
        subset = regimes.select_train_rows(
            data.dsd["train"],
            label_fraction=self.cfg.label_fraction,
            imbalance_ratio=self.cfg.imbalance_ratio,
            seed=seed,
            max_train_samples=self.cfg.max_train_samples,
            class_names=data.class_names,
        )
        return subset.indices, subset.class_counts

    def score(
        self, outcome: Outcome, data: EvalData, counts: list[int], seed: int
    ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
        from eval_suite.metrics import compute_classification_metrics
        from eval_suite.stats import bootstrap_ci

        y_true, y_score = outcome.y_true, outcome.y_score
        assert y_true is not None and y_score is not None
        metrics = compute_classification_metrics(
            y_true, y_score, task=data.task, train_class_counts=counts, metrics=self.cfg.metrics
        )
        ci = bootstrap_ci(
            y_true,
            y_score,
            task=data.task,
            metrics=tuple(m for m in metrics if m not in _NON_SCALAR),
            n_resamples=self.cfg.n_bootstrap,
            seed=seed,
            train_class_counts=counts,
        )
        ci95 = {k: [float(v[0]), float(v[1])] for k, v in ci.items()}
        return metrics, ci95, {"y_true": y_true.tolist(), "y_score": np.round(y_score, 6).tolist()}


class FeatureProtocol(ClassificationProtocol):
    """A one-shot fit on frozen features, embedded once per split and cached on disk
    (``eval_suite.features``); subclasses implement :meth:`fit_predict`."""

    needs_features = True

    def __init__(self, cfg: EvalConfig) -> None:
        super().__init__(cfg)
        # split -> (features, labels), kept across the seeds of one run
        self._features: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def validate(cls, cfg: EvalConfig, task: str | None = None) -> None:
        policy = regimes.normalise_policy(cfg.sampler, cfg.loss, cfg.augment, cfg.mixup)
        if policy["augment"] != "none" or policy["mixup"] > 0 or policy["loss"] == "focal":
            raise ConfigError(
                f"the {cls.name} protocol works on cached features, so augmentation, mixup and focal "
                "loss cannot apply",
                "use --protocol frozen (head only, trained end to end with augmentation) or finetune",
            )
        super().validate(cfg, task)

    def head_parameters(self, embed_dim: int, num_classes: int, task: str) -> int:
        """Parameters the one-shot fit learns on ``embed_dim`` features (0: nothing is trained)."""
        return 0

    def fit_predict(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        test_x: np.ndarray,
        *,
        task: str,
        num_classes: int,
        seed: int,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Test scores ``(N, num_classes)`` (ordinal: ``(N, 1)``) and a fit report."""
        raise NotImplementedError

    def run(
        self,
        data: EvalData,
        extractor: FeatureExtractor,
        rows: np.ndarray,
        counts: list[int],
        seed: int,
        device: str,
    ) -> Outcome:
        from eval_suite.features import cache_key, cached_features, default_cache_dir

        cfg, cache = self.cfg, self._features
        cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
        t0 = time.perf_counter()
        hits = []
        # A capped run (tests, demos) embeds only its own rows; otherwise the full split is embedded
        # once and every regime/seed indexes into it.
        capped = cfg.max_train_samples is not None
        splits = {"train": data.dsd["train"].select(rows) if capped else data.dsd["train"]}
        splits.update(validation=data.dsd["validation"], test=data.dsd["test"])
        if capped:
            cache.pop("train", None)
        plan = runtime_plan(extractor, device, "extract", cfg.mixed_precision, cfg.channels_last)
        for split in ("train", "validation", "test"):
            if split not in cache:
                extra = {"init_seed": cfg.seeds[0]} if extractor.info.random_init else {}
                if plan.mixed_precision != "no":  # reduced-precision features are other features
                    extra["precision"] = plan.mixed_precision
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
                    plan=plan,
                )
                cache[split] = (feats, labels)
                hits.append(hit)
        test_x, blocks = cache["test"][0], [cache["test"][0]]
        for variant in self.test_variants:
            extra = {"init_seed": cfg.seeds[0]} if extractor.info.random_init else {}
            if plan.mixed_precision != "no":
                extra["precision"] = plan.mixed_precision
            extra["corruption"] = variant.block()
            key = cache_key(  # keyed by the clean split + the corruption: a hit skips corrupting
                extractor,
                data.dsd["test"],
                dataset=data.name,
                split_name="test",
                image_size=data.image_size,
                extra=extra,
            )
            feats, _, _ = cached_features(
                extractor,
                variant.dataset,  # built only on a cache miss
                cache_dir=cache_dir,
                key=key,
                device=device,
                desc=f"features test {variant.key}",
                plan=plan,
                n_rows=len(data.dsd["test"]),
            )
            blocks.append(feats)
        if len(blocks) > 1:  # one fit, scored on the clean and every corrupted test split at once
            test_x = np.concatenate(blocks)
        features_s = time.perf_counter() - t0
        take = slice(None) if capped else rows
        xtr, ytr = cache["train"][0][take], cache["train"][1][take]
        kind, _ = regimes.parse_sampler(self.policy["sampler"])
        if kind != "none":  # a sampler's draw (epoch 0) decides which rows the one-shot fit sees
            drawn = regimes.make_sampler(self.policy["sampler"], ytr, seed).epoch_indices()
            xtr, ytr = xtr[drawn], ytr[drawn]
        t1 = time.perf_counter()
        y_score, info = self.fit_predict(
            (xtr, ytr),
            cache["validation"],
            test_x,
            task=data.task,
            num_classes=len(data.class_names),
            seed=seed,
        )
        n_test = len(cache["test"][0])
        variants = {
            v.key: Outcome(y_true=cache["test"][1], y_score=y_score[(i + 1) * n_test : (i + 2) * n_test])
            for i, v in enumerate(self.test_variants)
        }
        y_score = y_score[:n_test]
        info.update(
            features_s=features_s,
            train_s=time.perf_counter() - t1,
            eval_s=0.0,
            features_cached=all(hits),
            runtime=plan.as_record(),
        )
        head = self.head_parameters(int(xtr.shape[1]), len(data.class_names), data.task)
        backbone = sum(p.numel() for p in extractor.parameters())
        info["parameters"] = {"trainable": int(head), "total": int(backbone + head)}
        return Outcome(fit=info, y_true=cache["test"][1], y_score=y_score, variants=variants)


# ------------------------------------------------------------------------------ shared helpers
def validation_score(y_true: np.ndarray, y_score: np.ndarray, task: str, metric: str) -> float:
    """One validation metric for model selection; falls back to accuracy where it is undefined."""
    from eval_suite.metrics import compute_classification_metrics

    try:
        value = compute_classification_metrics(y_true, y_score, task=task, metrics=[metric])[metric]
    except Exception:  # e.g. AUC on a validation split with one class: no signal, use accuracy
        value = float("nan")
    if value is None or not math.isfinite(float(value)):
        value = compute_classification_metrics(y_true, y_score, task=task, metrics=["accuracy"])["accuracy"]
    return float(value) if metric != "ece" else -float(value)


def runtime_plan(
    extractor: FeatureExtractor,
    device: str,
    purpose: str,
    mixed_precision: str = "auto",
    channels_last: bool | None = None,
) -> RuntimePlan:
    """Precision + memory format of ``extractor`` on ``device`` for ``purpose`` (``extract`` or
    ``finetune``): hfssl's one resolver, :func:`hfssl.training.resolve_runtime`."""
    from hfssl.training import resolve_runtime

    return resolve_runtime(
        device,
        extractor,
        extractor.spatial_dims,
        mixed_precision=mixed_precision,
        channels_last=channels_last,
        purpose=purpose,
    )


def volume_memory_format(spatial_dims: int) -> Any:
    """``torch.channels_last_3d`` for volumes, else ``None`` (keep the default layout): the fp32 layout.

    The protocols take their layout (and precision) from :func:`runtime_plan` now; this stays for
    callers that want the fp32 layout alone.

    3D convolutions run markedly faster channels-last on CPU, in training and inference alike;
    small 2D images gain nothing from it, so 2D keeps NCHW.
    """
    import torch

    return torch.channels_last_3d if spatial_dims == 3 else None


def to_memory_format(t: Any, memory_format: Any) -> Any:
    """``t.to(memory_format=...)`` for a tensor or module, or ``t`` unchanged when the format is None."""
    return t if memory_format is None else t.to(memory_format=memory_format)
