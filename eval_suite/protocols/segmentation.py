"""Segmentation protocol: a U-Net decoder on any extractor's feature maps, patch training, sliding windows.

The model is ``FeatureExtractor.feature_maps`` -> ``hfssl.models.UNetDecoder`` (with or without skip
connections) -> one logit map; the same path serves hfssl, timm and transformers checkpoints, and
the extractor adapts channels (DRIVE is RGB; a grey checkpoint sees the channel mean) and
normalises. Training draws random ``patch_size`` patches (with their masks through the chosen
augmentation) and minimises Dice + BCE (``hfssl.models.segmentation_loss``); inference tiles the
whole image with overlapping windows and averages the probabilities. Metrics are computed inside the
field-of-view mask; the best epoch is chosen by validation Dice.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from eval_suite import regimes
from eval_suite.protocols.base import EvalData, Outcome, Protocol
from hfssl.errors import ConfigError
from hfssl.utils.logging import get_logger, progress_disabled

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from datasets import Dataset

    from eval_suite.runner import EvalConfig
    from hfssl.hub import FeatureExtractor

logger = get_logger("eval_suite.segmentation")

OVERLAY_IMAGES = 1  # test images drawn as prediction-vs-truth overlays beside each record

SEG_PRESETS: dict[str, dict[str, Any]] = {
    # 20 DRIVE training images (16 after the validation carve-out) x 32 patches = 512 patches an epoch
    "medmnist": {"epochs": 50, "lr": 1e-3, "batch_size": 32, "milestones": [0.5, 0.75], "gamma": 0.1},
    "quick": {"epochs": 1, "lr": 1e-3, "batch_size": 8, "milestones": [], "gamma": 0.1},
}


class Segmentation(Protocol):
    """The ``segmentation`` protocol (DRIVE): :func:`run_segmentation` with the ``SEG_PRESETS`` recipe;
    pooled test metrics, bootstrap CIs over the per-image metrics."""

    name = "segmentation"
    task_kind = "segmentation"
    trains_extractor = True

    def __init__(self, cfg: EvalConfig) -> None:
        from eval_suite.protocols.finetune import recipe_from_config

        super().__init__(cfg)
        self.recipe = recipe_from_config(cfg, SEG_PRESETS)

    def params(self) -> dict[str, Any]:
        cfg = self.cfg
        params = {
            **self.recipe.params(),
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
        return params

    def train_rows(self, data: EvalData, seed: int) -> tuple[np.ndarray, list[int]]:
        rows = np.arange(len(data.dsd["train"]))
        if self.cfg.max_train_samples is not None:
            rows = rows[: self.cfg.max_train_samples]
        return rows, []

    def run(
        self,
        data: EvalData,
        extractor: FeatureExtractor,
        rows: np.ndarray,
        counts: list[int],
        seed: int,
        device: str,
    ) -> Outcome:
        cfg, train = self.cfg, data.dsd["train"]
        pooled, per_image, info = run_segmentation(
            extractor,
            train.select(rows) if len(rows) != len(train) else train,
            data.dsd["validation"],
            data.dsd["test"],
            recipe=self.recipe,
            policy=self.policy,
            seed=seed,
            skip_connections=cfg.skip_connections,
            decoder_channels=cfg.decoder_channels,
            patch_size=cfg.patch_size,
            patches_per_image=cfg.patches_per_image,
            overlap=cfg.sw_overlap,
            device=device,
            extra_tests=[(v.key, v.dataset) for v in self.test_variants],
        )
        examples = info.pop("test_examples", None)
        variants = {
            key: Outcome(metrics=m, per_image=pi) for key, (m, pi) in info.pop("variant_metrics", {}).items()
        }
        return Outcome(fit=info, metrics=pooled, per_image=per_image, examples=examples, variants=variants)

    def score(
        self, outcome: Outcome, data: EvalData, counts: list[int], seed: int
    ) -> tuple[dict[str, Any], dict[str, list[float]], dict[str, Any]]:
        from eval_suite.stats import bootstrap_ci_per_image

        assert outcome.metrics is not None and outcome.per_image
        columns = {k: [float(m[k]) for m in outcome.per_image] for k in outcome.per_image[0]}
        ci = bootstrap_ci_per_image(columns, n_resamples=self.cfg.n_bootstrap, seed=seed)
        ci95 = {k: [float(v[0]), float(v[1])] for k, v in ci.items()}
        return outcome.metrics, ci95, {"per_image": columns}


def _split_arrays(split: Dataset) -> dict[str, torch.Tensor]:
    """Images float [0, 1] (N, C, H, W) and uint8 masks/FOV (N, H, W) of a segmentation split."""
    import torch

    from hfssl.data import to_tensor_batch

    table = split.with_format("arrow")[:]
    images, _ = to_tensor_batch(table, label_column="__none__")
    mask = torch.from_numpy(_col(table, "mask"))
    fov = torch.from_numpy(_col(table, "fov")) if "fov" in split.column_names else torch.ones_like(mask)
    return {"images": images, "mask": mask.to(torch.uint8), "fov": fov.to(torch.uint8)}


def _col(table: Any, name: str) -> np.ndarray:
    from hfssl.data import arrow_to_numpy

    return arrow_to_numpy(table.column(name)).astype(np.uint8)


class SegmentationModel:
    """Factory for ``extractor.feature_maps -> UNetDecoder`` as one ``nn.Module``."""

    @staticmethod
    def build(
        extractor: FeatureExtractor, skip_connections: bool, decoder_channels: list[int] | None
    ) -> torch.nn.Module:
        from torch import nn

        from hfssl.models import UNetDecoder

        channels = list(decoder_channels or (256, 128, 64))
        if len(extractor.feature_channels) < len(channels) + 1:
            raise ConfigError(
                f"{extractor.info.spec} gives {len(extractor.feature_channels)} feature maps; a "
                f"{len(channels)}-stage decoder needs {len(channels) + 1}",
                "use a CNN backbone with more stages or fewer --decoder-channels",
            )

        class _Seg(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.extractor = extractor
                self.decoder = UNetDecoder(
                    extractor.feature_channels,
                    channels,
                    out_channels=1,
                    spatial_dims=extractor.spatial_dims,
                    skip_connections=skip_connections,
                )

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.decoder(self.extractor.feature_maps(x), output_size=x.shape[2:])

        return _Seg()


def _random_patches(
    data: dict[str, torch.Tensor], n: int, patch: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    images, masks = data["images"], data["mask"]
    count, _, height, width = images.shape
    idx = torch.randint(0, count, (n,), generator=generator)
    ys = torch.randint(0, height - patch + 1, (n,), generator=generator)
    xs = torch.randint(0, width - patch + 1, (n,), generator=generator)
    x = torch.stack([images[i, :, y : y + patch, s : s + patch] for i, y, s in zip(idx, ys, xs)])
    m = torch.stack([masks[i, y : y + patch, s : s + patch] for i, y, s in zip(idx, ys, xs)])
    return x, m


def _starts(size: int, patch: int, stride: int) -> list[int]:
    if size <= patch:
        return [0]
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)  # the last window ends exactly at the border
    return starts


def sliding_window_predict(
    model: torch.nn.Module,
    image: torch.Tensor,
    patch: int,
    overlap: float = 0.5,
    batch_size: int = 32,
    device: str = "cpu",
) -> np.ndarray:
    """Foreground probability ``(H, W)`` of one image ``(C, H, W)``, windows averaged where they overlap.

    Hand-written (20 lines) rather than MONAI's ``sliding_window_inference``: MONAI is not a
    dependency, and the window grid here is the plain one (uniform weights, last window flush).
    """
    import torch

    _, height, width = image.shape
    stride = max(1, int(round(patch * (1.0 - overlap))))
    windows = [(y, x) for y in _starts(height, patch, stride) for x in _starts(width, patch, stride)]
    total = torch.zeros(height, width)
    count = torch.zeros(height, width)
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            chunk = windows[i : i + batch_size]
            x = torch.stack([image[:, y : y + patch, s : s + patch] for y, s in chunk]).to(device)
            prob = torch.sigmoid(model(x)[:, 0].float()).cpu()
            for (y, s), p in zip(chunk, prob):
                total[y : y + p.shape[0], s : s + p.shape[1]] += p
                count[y : y + p.shape[0], s : s + p.shape[1]] += 1
    return (total / count.clamp_min(1)).numpy()


def evaluate_images(
    model: torch.nn.Module, data: dict[str, torch.Tensor], patch: int, overlap: float, device: str
) -> tuple[dict[str, float], list[dict[str, float]], np.ndarray]:
    """Pooled (all pixels of all images, inside the FOV) and per-image metrics at threshold 0.5,
    and the binary predictions ``(N, H, W)`` they were computed from."""
    from eval_suite.metrics import compute_segmentation_metrics

    preds, per_image = [], []
    for i in range(len(data["images"])):
        prob = sliding_window_predict(model, data["images"][i], patch, overlap, device=device)
        pred = (prob >= 0.5).astype(np.uint8)
        preds.append(pred)
        per_image.append(
            compute_segmentation_metrics(pred, data["mask"][i].numpy(), fov=data["fov"][i].numpy())
        )
    stacked = np.stack(preds)
    pooled = compute_segmentation_metrics(stacked, data["mask"].numpy(), fov=data["fov"].numpy())
    return pooled, per_image, stacked


def run_segmentation(
    extractor: FeatureExtractor,
    train: Dataset,
    val: Dataset,
    test: Dataset,
    *,
    recipe: Any,
    policy: dict[str, Any],
    seed: int,
    skip_connections: bool = True,
    decoder_channels: list[int] | None = None,
    patch_size: int = 64,
    patches_per_image: int = 32,
    overlap: float = 0.5,
    device: str = "cpu",
    extra_tests: Sequence[tuple[str, Callable[[], Dataset]]] = (),
) -> tuple[dict[str, float], list[dict[str, float]], dict[str, Any]]:
    """Train on random patches of ``train``, pick the best validation-Dice epoch, score ``test``.

    ``extra_tests``: ``(key, build)`` pairs of corrupted test splits, scored by the same model into
    ``info["variant_metrics"][key] = (pooled, per_image)``.

    Returns ``(pooled_metrics, per_image_metrics, info)``; ``info["test_examples"]`` holds the first
    :data:`OVERLAY_IMAGES` test images with their masks, FOVs and predictions (for overlay plots).
    """
    import torch
    from tqdm.auto import tqdm

    from hfssl.models import segmentation_loss

    if extractor.spatial_dims != 2:
        raise ConfigError(
            "3D segmentation needs a 3D segmentation dataset, and none is available",
            "evaluate 3D checkpoints with a classification protocol, or segment DRIVE with a 2D one",
        )
    if policy["sampler"] != "none" or policy["loss"] != "ce" or policy["mixup"] > 0:
        raise ConfigError(
            "samplers, loss policies and mixup apply to classification only",
            "for segmentation use --sampler none --loss ce --mixup 0 (augmentation works)",
        )
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    data = {"train": _split_arrays(train), "val": _split_arrays(val), "test": _split_arrays(test)}
    height, width = data["train"]["images"].shape[2:]
    if patch_size > min(height, width):
        raise ConfigError(
            f"patch size {patch_size} is larger than the images ({height}x{width})",
            "pass a smaller --patch-size",
        )
    model = SegmentationModel.build(extractor, skip_connections, decoder_channels).to(device)
    augment = regimes.make_augment(policy["augment"], 2, seed, dataset="drive")
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    milestones = sorted({max(1, round(f * recipe.epochs)) for f in recipe.milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=recipe.gamma)
    n_patches = patches_per_image * len(data["train"]["images"])
    best_score, best_epoch, best_state, since_best = -float("inf"), -1, None, 0
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(
        range(recipe.epochs), desc=f"segmentation seed {seed}", leave=False, disable=progress_disabled()
    )
    for epoch in bar:
        model.train()
        x_all, m_all = _random_patches(data["train"], n_patches, patch_size, generator)
        total = 0.0
        for i in range(0, n_patches, recipe.batch_size):
            x, m = x_all[i : i + recipe.batch_size], m_all[i : i + recipe.batch_size]
            if len(x) < 2:
                continue  # a batch of one breaks batch norm
            if augment is not None:
                x, m = augment(x, m.unsqueeze(1), generator=generator)
                m = m[:, 0]
            loss = segmentation_loss(model(x.to(device)), m.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(x)
        scheduler.step()
        pooled, _, _ = evaluate_images(model, data["val"], patch_size, overlap, device)
        history.append({"epoch": epoch + 1, "train_loss": total / n_patches, "val_dice": pooled["dice"]})
        bar.set_postfix(loss=f"{total / n_patches:.4f}", dice=f"{pooled['dice']:.4f}")
        if pooled["dice"] > best_score:
            best_score, best_epoch, since_best = pooled["dice"], epoch + 1, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            since_best += 1
            if recipe.patience is not None and since_best >= recipe.patience:
                break
    train_s = time.perf_counter() - t0
    if best_state is not None:
        model.load_state_dict(best_state)
    t1 = time.perf_counter()
    pooled, per_image, preds = evaluate_images(model, data["test"], patch_size, overlap, device)
    variant_metrics = {}
    for key, build in extra_tests:  # train once, test many: the corrupted test splits
        v_pooled, v_per_image, _ = evaluate_images(model, _split_arrays(build()), patch_size, overlap, device)
        variant_metrics[key] = (v_pooled, v_per_image)
    info = {
        "best_epoch": best_epoch,
        "best_val_dice": best_score,
        "epochs_run": len(history),
        "history": history,
        "train_s": train_s,
        "eval_s": time.perf_counter() - t1,
        # not part of the record (the protocol pops it): the first test images for overlay pictures
        "test_examples": {
            "images": data["test"]["images"][:OVERLAY_IMAGES].numpy(),
            "mask": data["test"]["mask"][:OVERLAY_IMAGES].numpy(),
            "fov": data["test"]["fov"][:OVERLAY_IMAGES].numpy(),
            "pred": preds[:OVERLAY_IMAGES],
        },
    }
    if variant_metrics:
        info["variant_metrics"] = variant_metrics
    return pooled, per_image, info
