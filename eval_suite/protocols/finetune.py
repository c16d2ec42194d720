"""End-to-end classification protocols on a :class:`~hfssl.hub.FeatureExtractor` + head.

Modes (the paper's names in brackets):

* ``finetune`` - every weight trains (the paper's default);
* ``warmup`` - the encoder is frozen for the first ``warmup_epochs`` epochs, then unfrozen ("warm-up");
* ``frozen`` - the encoder stays frozen (batch-norm statistics too), only the head trains, end to end
  with augmentation ("fixed");
* ``scratch`` - ``finetune`` from a randomly initialised extractor (the runner loads it so).

Each mode is a protocol class below (:class:`Finetune`, :class:`Warmup`, :class:`Frozen`,
:class:`Scratch`) around one training loop, :func:`run_finetune`.

Recipes come from ``PRESETS`` (``medmnist`` = the MedMNIST v2 baseline: Adam 1e-3, x0.1 at 50 % and
75 % of 100 epochs, batch 128, best epoch by validation AUC; ``quick`` = a tiny CPU recipe for tests
and demos) with any field overridden. The best validation epoch's weights score the test split.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from eval_suite import regimes
from eval_suite.protocols.base import (
    ClassificationProtocol,
    EvalData,
    Outcome,
    runtime_plan,
    to_memory_format,
    validation_score,
)
from hfssl.errors import ConfigError
from hfssl.utils.logging import get_logger, progress_disabled

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from datasets import Dataset

    from eval_suite.runner import EvalConfig
    from hfssl.hub import FeatureExtractor
    from hfssl.training import RuntimePlan

logger = get_logger("eval_suite.finetune")

PRESETS: dict[str, dict[str, Any]] = {
    "medmnist": {"epochs": 100, "lr": 1e-3, "batch_size": 128, "milestones": [0.5, 0.75], "gamma": 0.1},
    "quick": {"epochs": 2, "lr": 1e-3, "batch_size": 64, "milestones": [], "gamma": 0.1},
}


@dataclass
class Recipe:
    """Training recipe of an end-to-end protocol (goes into the record's ``protocol.params``)."""

    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    """LR decay points as fractions of ``epochs``."""
    gamma: float = 0.1
    weight_decay: float = 0.0
    select_metric: str = "auc"
    patience: int | None = None
    """Early stopping: stop after this many epochs without a better validation score."""
    warmup_epochs: int = 0
    head: str = "linear"

    @classmethod
    def from_preset(
        cls, preset: str | None, table: dict[str, dict[str, Any]] | None = None, **overrides: Any
    ) -> Recipe:
        """The preset's recipe (``PRESETS`` unless ``table``) with every non-``None`` override applied."""
        table = PRESETS if table is None else table
        base: dict[str, Any] = {}
        if preset is not None:
            if preset not in table:
                raise ConfigError(f"unknown preset {preset!r}", f"use one of: {', '.join(table)}")
            base = dict(table[preset])
        base.update({k: v for k, v in overrides.items() if v is not None})
        recipe = cls(**base)
        if recipe.epochs < 1 or recipe.batch_size < 2 or recipe.lr <= 0:
            raise ConfigError(
                f"recipe needs epochs >= 1, batch_size >= 2 and lr > 0 (got {recipe.epochs}, "
                f"{recipe.batch_size}, {recipe.lr})",
                "fix --epochs / --batch-size / --lr",
            )
        if recipe.head not in ("linear", "mlp"):
            raise ConfigError(f"unknown head {recipe.head!r}", "use linear or mlp (GAP -> FC1024 -> classes)")
        return recipe

    def params(self) -> dict[str, Any]:
        return asdict(self)


def recipe_from_config(cfg: EvalConfig, table: dict[str, dict[str, Any]], warmup: bool = False) -> Recipe:
    """The run's recipe: ``cfg.preset`` from ``table`` with the config's overrides; the warmup
    length (default 10 % of the epochs) counts only when ``warmup``."""
    preset = cfg.preset or "medmnist"
    if preset not in table:
        raise ConfigError(f"unknown preset {preset!r}", f"use one of: {', '.join(table)}")
    epochs = cfg.epochs or table[preset]["epochs"]
    warmup_epochs = cfg.warmup_epochs if cfg.warmup_epochs is not None else max(1, round(0.1 * epochs))
    return Recipe.from_preset(
        preset,
        table=table,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        select_metric=cfg.select_metric,
        patience=cfg.patience,
        warmup_epochs=warmup_epochs if warmup else 0,
        head=cfg.head,
    )


class Finetune(ClassificationProtocol):
    """End-to-end training of extractor + head with the ``PRESETS`` recipe (every weight trains)."""

    name = "finetune"
    trains_extractor = True
    uses_ordinal_head = True

    def __init__(self, cfg: EvalConfig) -> None:
        super().__init__(cfg)
        self.recipe = recipe_from_config(cfg, PRESETS, warmup=self.name == "warmup")

    def params(self) -> dict[str, Any]:
        params = {**self.recipe.params(), "preset": self.cfg.preset or "medmnist"}
        return {**params, **ordinal_params(self.cfg)}

    def run(
        self,
        data: EvalData,
        extractor: FeatureExtractor,
        rows: np.ndarray,
        counts: list[int],
        seed: int,
        device: str,
        wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    ) -> Outcome:
        """:func:`run_finetune` with this protocol's recipe, policy and corrupted test variants;
        ``wrap`` replaces the classifier before training (the ``lora`` protocol's adapters)."""
        train = data.dsd["train"]
        y_true, y_score, info = run_finetune(
            extractor,
            train.select(rows) if len(rows) != len(train) else train,
            data.dsd["validation"],
            data.dsd["test"],
            mode=self.name,
            task=data.task,
            num_classes=len(data.class_names),
            train_class_counts=counts,
            recipe=self.recipe,
            policy=self.policy,
            seed=seed,
            device=device,
            num_workers=self.cfg.num_workers,
            ordinal_head=self.cfg.ordinal_head,
            tune_thresholds=self.cfg.tune_thresholds,
            mixed_precision=self.cfg.mixed_precision,
            channels_last=self.cfg.channels_last,
            extra_tests=[(v.key, v.dataset) for v in self.test_variants],
            dataset=data.name,
            wrap=wrap,
        )
        variants = {
            key: Outcome(y_true=yt, y_score=ys) for key, (yt, ys) in info.pop("variant_scores", {}).items()
        }
        return Outcome(fit=info, y_true=y_true, y_score=y_score, variants=variants)


class Warmup(Finetune):
    """The encoder stays frozen for the recipe's first ``warmup_epochs``, then everything trains."""

    name = "warmup"


class Frozen(Finetune):
    """Only the head trains (encoder and its batch-norm statistics frozen), end to end."""

    name = "frozen"


class Scratch(Finetune):
    """``finetune`` from a randomly initialised extractor: the baseline every checkpoint faces."""

    name = "scratch"
    random_init = True


def ordinal_params(cfg: EvalConfig) -> dict[str, Any]:
    """The record's ordinal entries: the head (ordinal tasks only, so other records keep their ids)
    and, for the regression head, whether its cut points are tuned on validation."""
    if cfg.ordinal_head is None:
        return {}
    out: dict[str, Any] = {"ordinal_head": cfg.ordinal_head}
    if cfg.ordinal_head == "regression":
        out["tune_thresholds"] = bool(cfg.tune_thresholds)
    return out


def _classifier(
    extractor: FeatureExtractor, num_outputs: int, head: str, cumulative: bool = False
) -> torch.nn.Module:
    from torch import nn

    from hfssl.models import ClassificationHead

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.extractor = extractor
            self.head = ClassificationHead(extractor.embed_dim, num_outputs, kind=head, cumulative=cumulative)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.extractor.embed(x))

    return Classifier()


def predict(
    model: torch.nn.Module,
    loader: Any,
    task: str,
    device: str,
    memory_format: Any = None,
    ordinal_head: str | None = None,
    plan: RuntimePlan | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_score)``: class probabilities ``(N, C)`` (ordinal regression head: the regressed
    grades ``(N, 1)``; the other ordinal heads: per-grade probabilities).

    ``plan`` (precision + memory format) wins over ``memory_format`` when given.
    """
    import contextlib

    import torch

    from hfssl.models import ordinal_probabilities

    head = (ordinal_head or "regression") if task == "ordinal" else None
    model.eval()
    scores, labels = [], []
    amp = plan.autocast() if plan is not None else contextlib.nullcontext()
    with torch.inference_mode(), amp:
        for batch in loader:
            x = batch["pixel_values"].to(device)
            x = plan.apply(x) if plan is not None else to_memory_format(x, memory_format)
            out = model(x).float()
            if head is None:
                out = out.softmax(dim=1)
            elif head != "regression":  # a regressed grade stays as it is
                out = ordinal_probabilities(out, head)
            scores.append(out.cpu())
            labels.append(batch["labels"].reshape(-1))
    return torch.cat(labels).numpy().astype(np.int64), torch.cat(scores).numpy().astype(np.float64)


def _freeze_norm_statistics(module: torch.nn.Module) -> None:
    """Batch-norm layers of ``module`` in eval mode: their running statistics stop updating."""
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


def _set_encoder_frozen(model: torch.nn.Module, frozen: bool) -> None:
    for p in model.extractor.parameters():
        p.requires_grad_(not frozen)


def run_finetune(
    extractor: FeatureExtractor,
    train: Dataset,
    val: Dataset,
    test: Dataset,
    *,
    mode: str,
    task: str,
    num_classes: int,
    train_class_counts: list[int],
    recipe: Recipe,
    policy: dict[str, Any],
    seed: int,
    device: str = "cpu",
    num_workers: int = 0,
    on_epoch: Callable[[dict[str, Any], torch.nn.Module, bool], None] | None = None,
    ordinal_head: str | None = None,
    tune_thresholds: bool = True,
    mixed_precision: str = "auto",
    channels_last: bool | None = None,
    extra_tests: Sequence[tuple[str, Callable[[], Dataset]]] = (),
    dataset: str | None = None,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Train ``extractor`` + head on ``train``, pick the best ``val`` epoch, score ``test``.

    ``extra_tests``: ``(key, build)`` pairs of further test splits (corrupted copies), scored with
    the same best-epoch model into ``info["variant_scores"][key] = (y_true, y_score)``.
    ``dataset`` names the data for ``--augment corrupt:P`` (its modality's corruptions).
    ``wrap(classifier) -> model`` replaces the classifier (``extractor`` + ``head``) before training
    (``mode="lora"``: peft's LoRA wrapper; only what it leaves trainable trains). ``info["parameters"]``
    holds the trainable and total parameter counts (:func:`hfssl.hub.lora.parameter_counts`).

    Precision and memory format come from hfssl's resolver (``finetune`` purpose: bf16 autocast
    on GPUs and on CPUs with native bf16); ``mixed_precision`` / ``channels_last`` override it.

    Returns ``(y_true, y_score, info)`` where ``info`` holds the best epoch, the validation history
    and timings. ``on_epoch(entry, model, is_best)`` is called after every epoch (logging, scripts).
    Ordinal tasks use ``ordinal_head`` (``None`` = regression); the regression head's cut points are
    tuned on ``val`` after training when ``tune_thresholds`` (``info["thresholds"]``) and its test
    scores are then the thresholded grades.
    """
    import torch
    from tqdm.auto import tqdm

    from hfssl.data import make_dataloader, read_labels

    if mode not in ("finetune", "warmup", "frozen", "scratch", "lora"):
        raise ConfigError(f"unknown training mode {mode!r}", "use finetune, warmup, frozen, scratch or lora")
    from eval_suite.protocols.ordinal import apply_thresholds
    from eval_suite.protocols.ordinal import tune_thresholds as tune
    from hfssl.models import ordinal_num_outputs

    torch.manual_seed(seed)
    head = (ordinal_head or "regression") if task == "ordinal" else None
    regressed = head == "regression"
    num_outputs = ordinal_num_outputs(head, num_classes) if head else num_classes
    plan = runtime_plan(extractor, device, "finetune", mixed_precision, channels_last)
    model = _classifier(extractor, num_outputs, recipe.head, cumulative=head == "cumulative")
    if wrap is not None:
        model = wrap(model)
    model = plan.apply(model.to(device))
    labels = read_labels(train)
    sampler = regimes.make_sampler(policy["sampler"], labels, seed)
    n_epoch = len(sampler) if sampler is not None else len(train)
    loader = make_dataloader(
        train,
        batch_size=recipe.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        augment=regimes.make_augment(policy["augment"], extractor.spatial_dims, seed, dataset=dataset),
        seed=seed,
        num_workers=num_workers,
        drop_last=n_epoch % recipe.batch_size == 1,  # a batch of one breaks batch norm
    )
    val_loader = make_dataloader(val, batch_size=256, num_workers=num_workers)
    test_loader = make_dataloader(test, batch_size=256, num_workers=num_workers)
    loss_fn = regimes.make_loss(policy["loss"], train_class_counts, task, ordinal_head=head)
    if mode != "lora":
        _set_encoder_frozen(model, False)
    # frozen parameters (LoRA's base weights) never reach the optimiser
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    milestones = sorted({max(1, round(f * recipe.epochs)) for f in recipe.milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=recipe.gamma)
    generator = torch.Generator().manual_seed(seed)
    frozen_epochs = {"frozen": recipe.epochs, "warmup": recipe.warmup_epochs}.get(mode, 0)
    select = "qwk" if task == "ordinal" and recipe.select_metric == "auc" else recipe.select_metric

    best_score, best_epoch, best_state, since_best = -float("inf"), -1, None, 0
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(range(recipe.epochs), desc=f"{mode} seed {seed}", leave=False, disable=progress_disabled())
    for epoch in bar:
        frozen = epoch < frozen_epochs
        if mode != "lora":  # LoRA keeps what peft froze frozen
            _set_encoder_frozen(model, frozen)
        model.train()
        if frozen:
            model.extractor.eval()  # frozen means frozen batch-norm statistics too
        elif mode == "lora":
            _freeze_norm_statistics(model.extractor)  # the base model stays as it was, buffers too
        if sampler is not None:
            sampler.set_epoch(epoch)
        total, seen = 0.0, 0
        for batch in loader:
            x = plan.apply(batch["pixel_values"].to(device))
            y = batch["labels"].reshape(-1).to(device)
            target = y.float() if regressed else torch.nn.functional.one_hot(y, num_classes).float()
            if policy["mixup"] > 0 and not regressed:
                x, target = regimes.mixup(x, target, policy["mixup"], generator)
            with plan.autocast():
                logits = model(x)
            loss = loss_fn(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
            seen += len(y)
        scheduler.step()
        yv, sv = predict(model, val_loader, task, device, ordinal_head=head, plan=plan)
        score = validation_score(yv, sv, task, select)
        history.append({"epoch": epoch + 1, "train_loss": total / max(seen, 1), f"val_{select}": score})
        bar.set_postfix(loss=f"{total / max(seen, 1):.4f}", val=f"{score:.4f}")
        is_best = score > best_score
        if on_epoch is not None:
            on_epoch(history[-1], model, is_best)
        if is_best:
            best_score, best_epoch, since_best = score, epoch + 1, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            since_best += 1
            if recipe.patience is not None and since_best >= recipe.patience:
                logger.info(
                    f"early stop at epoch {epoch + 1} (best {best_epoch}, val {select} {best_score:.4f})"
                )
                break
    train_s = time.perf_counter() - t0
    from hfssl.hub.lora import parameter_counts

    counts = parameter_counts(model)
    if mode == "frozen":  # only the head ever trained
        counts["trainable"] = sum(p.numel() for p in model.head.parameters())
    if best_state is not None:
        model.load_state_dict(best_state)
    t1 = time.perf_counter()
    y_true, y_score = predict(model, test_loader, task, device, ordinal_head=head, plan=plan)
    tuned: dict[str, Any] = {}
    if regressed and tune_thresholds:
        yv, sv = predict(model, val_loader, task, device, ordinal_head=head, plan=plan)
        tuned = tune(sv, yv, num_classes)
        y_score = apply_thresholds(y_score, tuned["thresholds"]).astype(np.float64).reshape(-1, 1)
    variant_scores = {}
    for key, build in extra_tests:  # train once, test many: the corrupted test splits
        loader = make_dataloader(build(), batch_size=256, num_workers=num_workers)
        yt, ys = predict(model, loader, task, device, ordinal_head=head, plan=plan)
        if tuned:
            ys = apply_thresholds(ys, tuned["thresholds"]).astype(np.float64).reshape(-1, 1)
        variant_scores[key] = (yt, ys)
    info = {
        "best_epoch": best_epoch,
        f"best_val_{select}": best_score,
        "epochs_run": len(history),
        "history": history,
        "train_s": train_s,
        "eval_s": time.perf_counter() - t1,
        **tuned,
        "runtime": plan.as_record(),
        "parameters": counts,
    }
    if variant_scores:
        info["variant_scores"] = variant_scores
    return y_true, y_score, info
