"""Leaderboard plots (matplotlib, Agg backend, PNG files; the HTML embeds them).

* ``plot_per_class_recall``: per-class recall bars per method, SSL vs scratch (the paper's
  "which class gained");
* ``plot_metric_curves``: a metric vs imbalance ratio or vs label fraction, one line per method
  with its 95 % CI band;
* ``plot_reliability``: reliability diagrams (top-label confidence vs accuracy) per method;
* ``plot_segmentation_overlay``: a segmentation prediction over its image, TP / FP / FN coloured,
  outside the field of view dimmed.

matplotlib is imported inside the functions so that importing this module (and ``hfssl --help``)
stays instant; every PNG is written atomically.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hfssl.utils.io import atomic_path

_DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display on servers/CI; PNG output only
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str | os.PathLike) -> Path:
    plt = _pyplot()
    out = Path(out)
    try:
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out


def plot_per_class_recall(
    recalls: Mapping[str, Sequence[float]],
    class_names: Sequence[str],
    out: str | os.PathLike,
    *,
    title: str = "",
    errors: Mapping[str, Sequence[float]] | None = None,
) -> Path:
    """Grouped bars: one group per class, one bar per method (``recalls[method][class]``).

    ``errors`` (optional, same shape) draws the std over seeds as error bars.
    """
    if not recalls:
        raise ValueError("plot_per_class_recall needs at least one method")
    n_classes = len(class_names)
    for method, values in recalls.items():
        if len(values) != n_classes:
            raise ValueError(f"{method}: {len(values)} recalls for {n_classes} classes")
    plt = _pyplot()
    methods = list(recalls)
    width = 0.8 / len(methods)
    x = np.arange(n_classes)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * n_classes * max(1, len(methods)) ** 0.5 + 2), 3.2))
    for i, method in enumerate(methods):
        yerr = None if not errors or method not in errors else np.asarray(errors[method], dtype=float)
        ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            recalls[method],
            width,
            yerr=yerr,
            label=method,
            capsize=2,
        )
    ax.set_xticks(x, [str(c) for c in class_names], rotation=20 if n_classes > 4 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall")
    ax.set_title(title or "per-class recall", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)


def plot_metric_curves(
    series: Mapping[str, Sequence[tuple[float, float, float | None, float | None]]],
    out: str | os.PathLike,
    *,
    xlabel: str,
    metric: str,
    title: str = "",
    log_x: bool = False,
) -> Path:
    """Lines of ``metric`` vs x per method: ``series[method] = [(x, mean, ci_low, ci_high), ...]``.

    CI bounds may be ``None`` (no band drawn for that point). Points are sorted by x.
    """
    if not series:
        raise ValueError("plot_metric_curves needs at least one method")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for method, points in series.items():
        pts = sorted(points, key=lambda p: p[0])
        xs = np.array([p[0] for p in pts], dtype=float)
        ys = np.array([p[1] for p in pts], dtype=float)
        (line,) = ax.plot(xs, ys, marker="o", label=method)
        lo = np.array([np.nan if p[2] is None else p[2] for p in pts], dtype=float)
        hi = np.array([np.nan if p[3] is None else p[3] for p in pts], dtype=float)
        if np.isfinite(lo).any():
            ax.fill_between(xs, lo, hi, alpha=0.15, color=line.get_color())
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_confusion_matrices(
    matrices: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    out: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """One heat map per method of the row-normalised confusion matrix (true class x predicted).

    ``matrices[method]`` holds counts ``(C, C)`` (summed over seeds by the caller); each row is
    divided by its total so a rare class's recall reads the same as a common one's, and the
    cells show that fraction.
    """
    if not matrices:
        raise ValueError("plot_confusion_matrices needs at least one method")
    n = len(class_names)
    for method, m in matrices.items():
        if np.shape(m) != (n, n):
            raise ValueError(f"{method}: confusion matrix of shape {np.shape(m)} for {n} classes")
    plt = _pyplot()
    cols = len(matrices)
    size = max(2.4, 0.45 * n + 1.2)
    fig, axes = plt.subplots(1, cols, figsize=(size * cols, size + 0.4), squeeze=False)
    for ax, (method, counts) in zip(axes[0], matrices.items()):
        counts = np.asarray(counts, dtype=float)
        rows = counts.sum(axis=1, keepdims=True)
        frac = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
        ax.imshow(frac, vmin=0.0, vmax=1.0, cmap="Blues")
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{frac[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if frac[i, j] > 0.5 else "black")  # fmt: skip
        ticks = [str(c) for c in class_names]
        ax.set_xticks(np.arange(n), ticks, fontsize=6, rotation=30 if n > 4 else 0)
        ax.set_yticks(np.arange(n), ticks, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
        ax.set_title(method, fontsize=7)
    fig.suptitle(title or "confusion matrix (rows: true class, normalised)", fontsize=9)
    return _save(fig, out)


def reliability_bins(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Top-label reliability bins (``eval_suite.metrics.calibration_bins``): per equal-width
    confidence bin, mean confidence, accuracy and count (empty bins: nan, count 0)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(y_score, dtype=float)
    if scores.ndim == 1:  # positive-class score of a binary task
        scores = np.stack([1 - scores, scores], axis=1)
    if scores.ndim != 2 or scores.shape[0] != y_true.shape[0]:
        raise ValueError(f"y_score shape {scores.shape} does not match {y_true.shape[0]} labels")
    from eval_suite.metrics import calibration_bins

    # The metrics layer's bins, so the diagram is the one behind the reported ECE.
    bins = calibration_bins(y_true, scores, n_bins=n_bins)
    return {k: np.asarray(bins[k], dtype=float) for k in ("confidence", "accuracy", "count")}


def plot_reliability(
    outputs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out: str | os.PathLike,
    *,
    title: str = "",
    n_bins: int = 10,
) -> Path:
    """Reliability diagram, one line per method: ``outputs[method] = (y_true, y_score)``.

    Seeds of one method may be concatenated (same test set, more predictions per bin).
    """
    if not outputs:
        raise ValueError("plot_reliability needs at least one method")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for method, (y_true, y_score) in outputs.items():
        b = reliability_bins(y_true, y_score, n_bins=n_bins)
        keep = b["count"] > 0
        ax.plot(b["confidence"][keep], b["accuracy"][keep], marker="o", label=method)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top label)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or "reliability", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, out)


def overlay_rgb(
    image: np.ndarray, target: np.ndarray, pred: np.ndarray, fov: np.ndarray | None = None
) -> np.ndarray:
    """RGB uint8 overlay: true positives white, false positives red, false negatives blue, over the
    greyscale image; outside the field of view darkened."""
    image = np.asarray(image)
    target = np.asarray(target).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)  # channels-first -> channels-last
    if image.ndim == 3:
        image = image.mean(axis=-1)
    if not (image.shape == target.shape == pred.shape):
        raise ValueError(
            f"image {image.shape}, target {target.shape} and pred {pred.shape} must have one shape"
        )
    fov = np.ones_like(target) if fov is None else np.asarray(fov).astype(bool)
    if fov.shape != target.shape:
        raise ValueError(f"fov {fov.shape} must have the shape of target {target.shape}")
    grey = image.astype(float)
    if grey.max() > 1.0:
        grey = grey / 255.0
    rgb = np.repeat((0.6 * grey)[..., None], 3, axis=-1)
    rgb[pred & target] = (1.0, 1.0, 1.0)
    rgb[pred & ~target] = (0.95, 0.15, 0.15)
    rgb[~pred & target] = (0.2, 0.45, 1.0)
    rgb[~fov] *= 0.3
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def plot_segmentation_overlay(
    image: np.ndarray,
    target: np.ndarray,
    pred: np.ndarray,
    fov: np.ndarray | None,
    out: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Image | ground truth | prediction-vs-truth overlay (TP white, FP red, FN blue), as one PNG.

    ``image`` (H, W) or (H, W, C) / (C, H, W), uint8 or [0, 1]; ``target``/``pred``/``fov`` binary (H, W).
    """
    overlay = overlay_rgb(image, target, pred, fov)
    plt = _pyplot()
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
    axes[0].set_title("image", fontsize=8)
    axes[1].imshow(np.asarray(target).astype(bool), cmap="gray")
    axes[1].set_title("ground truth", fontsize=8)
    axes[2].imshow(overlay)
    axes[2].set_title("TP white · FP red · FN blue", fontsize=8)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, out)


# ------------------------------------------------------------------------------ leaderboard plots


@dataclass
class PlotInfo:
    """A written plot: where, what, and the table filters it belongs to (``""`` = any)."""

    path: Path
    relpath: str
    title: str
    kind: str
    dataset: str = ""
    protocol: str = ""
    regime: str = ""


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:80] or "plot"


def _unique(path: Path, used: set[Path]) -> Path:
    candidate, i = path, 1
    while candidate in used:
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        i += 1
    used.add(candidate)
    return candidate


def _mean_vectors(records: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    vectors = []
    for r in records:
        per_class = (r.get("metrics") or {}).get("per_class") or {}
        v = per_class.get(key)
        if isinstance(v, list) and v:
            vectors.append(np.asarray(v, dtype=float))
    if not vectors or len({v.shape for v in vectors}) != 1:
        return None
    stack = np.stack(vectors)
    return stack.mean(axis=0), (stack.std(axis=0, ddof=1) if len(stack) > 1 else np.zeros(stack.shape[1]))


def _summed_confusion(records: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    """The records' ``metrics.confusion_matrix`` counts summed over seeds (``None`` when absent)."""
    total = None
    for r in records:
        cm = (r.get("metrics") or {}).get("confusion_matrix")
        if not isinstance(cm, Mapping) or not cm:
            continue
        m = np.asarray([cm[str(i)] for i in range(len(cm))], dtype=float)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            return None
        if total is not None and total.shape != m.shape:
            return None
        total = m if total is None else total + m
    return total


def _effective_ratio(rs) -> float | None:
    """Majority:minority training ratio actually used (from the records' class counts), else the
    regime's number (card results), else None ("natural" without counts)."""
    for r in rs.records:
        counts = [c for c in ((r.get("dataset") or {}).get("train_class_counts") or []) if c]
        if counts:
            return float(max(counts)) / float(min(counts))
    try:
        return float(rs.setting.imbalance_ratio)
    except ValueError:
        return None


def make_plots(lb, out_dir: str | os.PathLike, *, results_dirs: Sequence[Path] = ()) -> list[PlotInfo]:
    """Write every plot the leaderboard's data allow into ``out_dir/plots`` and describe them.

    * per-class recall bars per setting (records with ``metrics.per_class.recall``);
    * metric vs imbalance ratio / vs label fraction / vs image size (settings that differ only in
      that; image size: resolution sweeps, ``--image-size 28 64 ...``);
    * confusion matrices per setting (records with ``metrics.confusion_matrix``: ordinal tasks);
    * reliability diagrams per setting (records with ``test_outputs.y_score``);
    * segmentation overlays: PNGs found as ``<results dir>/overlays/<record_id>*.png`` are copied in.
    """
    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    plots: list[PlotInfo] = []
    used: set[Path] = set()

    def add(path: Path, title: str, kind: str, setting=None, regime: bool = True) -> None:
        plots.append(
            PlotInfo(
                path=path,
                relpath=path.relative_to(out_dir).as_posix(),
                title=title,
                kind=kind,
                dataset=setting.dataset_label if setting else "",
                protocol=setting.protocol if setting else "",
                regime=setting.regime_label if setting and regime else "",
            )
        )

    for g in lb.groups:
        runsets = [e.runset for e in g.entries if e.runset is not None and e.runset.records]
        if not runsets or g.setting.kind != "classification":
            continue
        recalls, errors, class_names = {}, {}, None
        for rs in runsets:
            mv = _mean_vectors(rs.records, "recall")
            if mv is None:
                continue
            recalls[_label(rs)], errors[_label(rs)] = mv
            class_names = class_names or rs.class_names or [str(i) for i in range(len(mv[0]))]
        if recalls and class_names is not None and all(len(v) == len(class_names) for v in recalls.values()):
            path = _unique(plot_dir / f"recall_{_slug(g.title)}.png", used)
            plot_per_class_recall(
                recalls, class_names, path, title=f"per-class recall · {g.title}", errors=errors
            )
            add(path, f"Per-class recall · {g.title}", "per_class_recall", g.setting)
        matrices = {}
        for rs in runsets:
            summed = _summed_confusion(rs.records)
            if summed is not None:
                matrices[_label(rs)] = summed
        if matrices and len({m.shape for m in matrices.values()}) == 1:
            n = next(iter(matrices.values())).shape[0]
            names = next(
                (rs.class_names for rs in runsets if rs.class_names and len(rs.class_names) == n), None
            )
            path = _unique(plot_dir / f"confusion_{_slug(g.title)}.png", used)
            plot_confusion_matrices(
                matrices, names or [str(i) for i in range(n)], path, title=f"confusion matrix · {g.title}"
            )
            add(path, f"Confusion matrix · {g.title}", "confusion_matrix", g.setting)
        outputs = {}
        for rs in runsets:
            ys, ss = [], []
            for r in rs.records:
                to = r.get("test_outputs") or {}
                if "y_true" in to and "y_score" in to:
                    ys.append(np.asarray(to["y_true"]))
                    ss.append(np.asarray(to["y_score"], dtype=float))
            if ys and len({s.shape[1:] for s in ss}) == 1:
                outputs[_label(rs)] = (np.concatenate(ys), np.concatenate(ss))
        if outputs:
            path = _unique(plot_dir / f"reliability_{_slug(g.title)}.png", used)
            try:
                plot_reliability(outputs, path, title=f"reliability · {g.title}")
            except ValueError:
                path = None  # e.g. multilabel scores: no top-label diagram
            if path is not None:
                add(path, f"Reliability diagram · {g.title}", "reliability", g.setting)

    # Curves: settings that differ only in the imbalance ratio (or only in the label fraction).
    for axis, xlabel, log_x in (
        ("imbalance_ratio", "imbalance ratio (majority : minority, training set)", True),
        ("label_fraction", "label fraction", True),
    ):
        families: dict[tuple, list] = {}
        for g in lb.groups:
            s = g.setting
            other = s.label_fraction if axis == "imbalance_ratio" else s.imbalance_ratio
            families.setdefault((s.dataset_label, s.protocol, s.policy, other, g.metric), []).append(g)
        for (dataset, protocol, policy, other, metric), groups in families.items():
            if len({getattr(g.setting, axis) for g in groups}) < 2:
                continue
            series: dict[str, list] = {}
            for g in groups:
                for e in g.entries:
                    x = _effective_ratio(e.runset) if axis == "imbalance_ratio" else e.setting.label_fraction
                    if x is None or e.runset is None:
                        continue
                    series.setdefault(_label(e.runset), []).append((x, e.mean, e.ci_low, e.ci_high))
            series = {k: v for k, v in series.items() if len(v) >= 2}
            if not series:
                continue
            fixed = f"labels {other * 100:.4g}%" if axis == "imbalance_ratio" else f"imbalance {other}"
            title = f"{metric} vs {axis.replace('_', ' ')} · {dataset} · {protocol} · {fixed} · {policy}"
            path = _unique(plot_dir / f"{axis}_{_slug(title)}.png", used)
            plot_metric_curves(series, path, xlabel=xlabel, metric=metric, title=title, log_x=log_x)
            add(path, title, f"metric_vs_{axis}", groups[0].setting, regime=False)

    # Resolution: settings that differ only in the dataset's image size (one line per checkpoint).
    sizes: dict[tuple, list] = {}
    for g in lb.groups:
        s = g.setting
        if isinstance(s.image_size, int):
            key = (s.dataset, s.protocol, s.policy, s.label_fraction, s.imbalance_ratio, g.metric)
            sizes.setdefault(key, []).append(g)
    for (dataset, protocol, policy, fraction, ratio, metric), groups in sizes.items():
        if len({g.setting.image_size for g in groups}) < 2:
            continue
        series = {}
        for g in groups:
            for e in g.entries:
                if e.runset is not None:
                    series.setdefault(_label(e.runset), []).append(
                        (g.setting.image_size, e.mean, e.ci_low, e.ci_high)
                    )
        series = {k: v for k, v in series.items() if len(v) >= 2}
        if not series:
            continue
        title = (
            f"{metric} vs image size · {dataset} · {protocol} · labels {fraction * 100:.4g}%, "
            f"imbalance {ratio} · {policy}"
        )
        path = _unique(plot_dir / f"image_size_{_slug(title)}.png", used)
        plot_metric_curves(series, path, xlabel="image size (px)", metric=metric, title=title, log_x=True)
        add(path, title, "metric_vs_image_size", groups[0].setting, regime=False)

    # Segmentation overlays written by evaluations next to their records.
    collection = getattr(lb, "collection", None)
    record_paths = getattr(collection, "record_paths", {}) if collection is not None else {}
    for g in lb.groups:
        for e in g.entries:
            records = e.runset.records if e.runset is not None else []
            # one seed's pictures per entry: the other seeds' look alike and would multiply the size
            first_seed = (
                [min(records, key=lambda r: (r.get("seed") is None, r.get("seed") or 0))] if records else []
            )
            for r in first_seed:
                rid = str(r.get("record_id", ""))
                record_file = record_paths.get(rid)
                if not rid or record_file is None:
                    continue
                for png in sorted((record_file.parent / "overlays").glob(f"{rid}*.png")):
                    path = _unique(plot_dir / f"overlay_{_slug(e.checkpoint)}_{png.name}", used)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(path, suffix=".png") as tmp:
                        shutil.copyfile(png, tmp)
                    add(
                        path,
                        f"Segmentation overlay · {e.checkpoint} · seed {r.get('seed', 0)} · {g.title}",
                        "segmentation_overlay",
                        g.setting,
                    )
    return plots


def _label(rs) -> str:
    return (
        f"{rs.checkpoint} (scratch)" if rs.is_baseline and "scratch" not in rs.checkpoint else rs.checkpoint
    )
