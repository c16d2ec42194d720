"""Leaderboard pieces of foundation-model evaluations: LoRA rows with trainable-parameter counts
next to the other protocols, and the metric-vs-resolution plot of ``--image-size`` sweeps."""

from __future__ import annotations

from PIL import Image

from eval_suite.leaderboard.collect import collect
from eval_suite.leaderboard.plots import make_plots
from eval_suite.leaderboard.render_html import render_html
from eval_suite.leaderboard.render_md import render_csv, render_markdown
from eval_suite.leaderboard.table import build_leaderboard
from tests.eval_suite.leaderboard._factory import make_record, write_results

COUNTS = {"finetune": (2_683_010, 2_683_010), "lora": (36_866, 2_719_876), "linear": (193, 2_683_203)}


def _with_counts(record: dict, protocol: str) -> dict:
    trainable, total = COUNTS[protocol]
    record["parameters"] = {
        "trainable": trainable,
        "total": total,
        "trainable_percent": 100 * trainable / total,
    }
    return record


def test_lora_rows_show_their_trainable_parameters(tmp_path):
    records = [
        _with_counts(make_record("vit-tiny", skill=skill, seed=seed, protocol=protocol), protocol)
        for protocol, skill in (("finetune", 2.0), ("lora", 1.8), ("linear", 1.5))
        for seed in (0, 1)
    ]
    records.append(make_record("older", skill=1.0, protocol="linear"))  # written before the counts
    lb = build_leaderboard(collect([write_results(tmp_path / "res", records)]), n_resamples=50)
    assert {g.setting.protocol for g in lb.groups} == {"finetune", "lora", "linear"}
    rows = {(r["protocol"], r["checkpoint"]): r for r in lb.rows()}
    assert rows[("lora", "vit-tiny")]["trainable_params"] == 36_866
    assert rows[("linear", "older")]["trainable_params"] is None
    text = render_markdown(lb)
    assert "| trainable params |" in text
    lora_line = next(ln for ln in text.split("· lora ·")[1].splitlines() if ln.startswith("| 1 |"))
    assert lora_line.rstrip(" |").endswith("36,866 (1.36 %)")
    older = next(ln for ln in text.splitlines() if "| older |" in ln)
    assert older.rstrip(" |").endswith("–")
    assert "trainable_params" in render_csv(lb).splitlines()[0]
    html = render_html(lb)
    assert 'data-key="trainable_params" class="num" data-value="36866"' in html


def test_resolution_sweep_is_plotted_per_checkpoint(tmp_path):
    records = [
        make_record(name, skill=skill + 0.1 * (size == 64), image_size=size)
        for name, skill in (("dinov2-small", 2.0), ("rad-dino", 2.2))
        for size in (28, 64)
    ]
    records.append(make_record("only-28", skill=1.0, image_size=28))
    lb = build_leaderboard(collect([write_results(tmp_path / "res", records)]), n_resamples=50)
    plots = [p for p in make_plots(lb, tmp_path / "out") if p.kind == "metric_vs_image_size"]
    assert len(plots) == 1 and "vs image size · breastmnist · linear" in plots[0].title
    with Image.open(plots[0].path) as image:
        assert image.format == "PNG"
    single = [make_record("a", skill=1.0, image_size=28), make_record("b", skill=1.0, image_size=28)]
    lb = build_leaderboard(collect([write_results(tmp_path / "one", single)]), n_resamples=50)
    assert not [p for p in make_plots(lb, tmp_path / "out1") if p.kind == "metric_vs_image_size"]
