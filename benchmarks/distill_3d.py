"""Does slice-wise distillation from a 2D teacher teach a 3D student? kNN lift over random init.

The teacher is a 2D backbone pretrained on BreastMNIST 28 px: SimCLR on ``test_resnet`` with the
setting of ``tests/training/test_knn_lift.py`` (250 steps, batch 128, lr 3e-3, seed 0), trained
into ``--work-dir`` when missing, or any 2D checkpoint folder given with ``--teacher``. The
student is ``unet3d_encoder`` (channels 8-16-32-64: a one-thread CPU budget) on AdrenalMNIST3D
28^3, trained with ``--method distill`` (slice-wise defaults: 4 slices per axis from the central
half, spatial term on) for ``--steps`` steps (batch 32, AdamW lr 1e-3) through
the ``hfssl pretrain`` command line; the online kNN monitor (centred, k 20) scores the student on
the validation split every 50 steps, step 0 being the same backbone at random init. For
reference the teacher itself is scored the same way on the volumes, each volume embedded as the
mean of the teacher's embeddings of all its slices along the three axes.

One JSON line per seed (CPU model, date, seed, steps, init / final kNN accuracy, the curve, wall
time, the teacher and its slice-averaged kNN) is appended to ``benchmarks/results/distill_3d.jsonl``.

    python benchmarks/distill_3d.py --seeds 0 1 2
    python benchmarks/distill_3d.py --summary
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knn_lift import cpu_model, pretrain  # noqa: E402  (same subprocess run and kNN read-out)

RESULTS = Path(__file__).resolve().parent / "results" / "distill_3d.jsonl"
TEACHER_SETTING = [
    "--method", "simclr", "--method-kwargs", '{"temperature": 0.5}', "--backbone", "test_resnet",
    "--dataset", "breastmnist", "--learning-rate", "3e-3", "--per-device-train-batch-size", "128",
    "--max-steps", "250", "--warmup-ratio", "0.05", "--weight-decay", "1e-4", "--eval-strategy", "no",
    "--save-strategy", "no", "--report-to", "none", "--seed", "0",
]  # fmt: skip
STUDENT_SETTING = [
    "--method", "distill", "--backbone", "unet3d_encoder", "--backbone-kwargs", '{"channels": [8, 16, 32, 64]}',
    "--dataset", "adrenalmnist3d",
    "--image-size", "28", "--learning-rate", "1e-3", "--per-device-train-batch-size", "32",
    "--warmup-ratio", "0.05", "--weight-decay", "1e-4", "--logging-steps", "10",
    "--eval-strategy", "steps", "--eval-steps", "50", "--monitor-split", "validation",
    "--save-strategy", "no", "--report-to", "none",
]  # fmt: skip


def rows() -> list[dict]:
    if not RESULTS.is_file():
        return []
    return [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]


def teacher_slice_knn(teacher: str, data_dir: str | None) -> float:
    """The teacher's centred kNN accuracy (the monitor's k 20, T 0.07) on AdrenalMNIST3D validation,
    a volume embedded as the mean of its slices' embeddings over the three axes."""
    import torch

    from hfssl.data import load_source, to_tensor_batch
    from hfssl.hub import load_feature_extractor
    from hfssl.training.monitor import online_knn_metrics, online_knn_scores

    extractor = load_feature_extractor(teacher).eval()
    size = extractor.image_size

    @torch.no_grad()
    def embed(volumes: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(volumes), 16):
            v = volumes[start : start + 16].float()
            per_axis = []
            for dim in (2, 3, 4):
                s = v.movedim(dim, 1)
                s = s.reshape(-1, *s.shape[2:])
                if size and tuple(s.shape[2:]) != (size, size):
                    s = torch.nn.functional.interpolate(s, size=(size, size), mode="bilinear")
                per_axis.append(extractor.embed(s).view(len(v), -1, extractor.embed_dim).mean(1))
            out.append(torch.stack(per_axis).mean(0))
        return torch.cat(out)

    dsd = load_source("adrenalmnist3d", data_dir=data_dir, image_size=28)
    bank_x, bank_y = to_tensor_batch(dsd["train"][:])
    query_x, query_y = to_tensor_batch(dsd["validation"][:])
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    scores = online_knn_scores(embed(bank_x), bank_y, embed(query_x), num_classes=num_classes, k=20,
                               temperature=0.07, center=True)  # fmt: skip
    return online_knn_metrics(scores.argmax(1), query_y, num_classes)["knn_accuracy"]


def _adrenal(data_dir: str | None):
    from hfssl.data import load_source, to_tensor_batch

    dsd = load_source("adrenalmnist3d", data_dir=data_dir, image_size=28)
    return (*to_tensor_batch(dsd["train"][:]), *to_tensor_batch(dsd["validation"][:]))


def bn_control(seed: int, data_dir: str | None) -> tuple[float, float]:
    """Centred kNN of a random-init student (built with ``seed``) before and after only
    re-estimating its BatchNorm statistics on the train volumes (no gradient step): how much of
    a lift over step 0 needs no distillation at all."""
    import torch

    from hfssl.models import HfsslConfig, HfsslModel
    from hfssl.training.monitor import online_knn_metrics, online_knn_scores

    bank_x, bank_y, query_x, query_y = _adrenal(data_dir)
    torch.manual_seed(seed)
    model = HfsslModel(
        HfsslConfig(backbone="unet3d_encoder", spatial_dims=3, in_chans=1, image_size=28,
                    backbone_kwargs={"channels": [8, 16, 32, 64]})
    )  # fmt: skip

    @torch.no_grad()
    def knn() -> float:
        model.eval()
        bank = torch.cat([model.forward_features(bank_x[i : i + 64])[0] for i in range(0, len(bank_x), 64)])
        query = torch.cat(
            [model.forward_features(query_x[i : i + 64])[0] for i in range(0, len(query_x), 64)]
        )
        scores = online_knn_scores(bank, bank_y, query, num_classes=2, k=20, temperature=0.07, center=True)
        return online_knn_metrics(scores.argmax(1), query_y, 2)["knn_accuracy"]

    before = knn()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the pass
    model.train()
    order = torch.randperm(len(bank_x), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for i in range(0, len(order), 32):
            model.forward_features(bank_x[order[i : i + 32]])
    return before, knn()


def summary() -> None:
    data = [r for r in rows() if "control" not in r]
    for r in rows():
        if r.get("control") == "bn_recalibration":
            print(
                f"BN-recalibration control, seed {r['seed']}: random init {r['knn_accuracy_init']:.3f} -> "
                f"BN statistics only {r['knn_accuracy_bn_recalibrated']:.3f} ({r['cpu']})"
            )
    for cpu in sorted({r["cpu"] for r in data}):
        print(f"CPU: {cpu}")
        mine = [r for r in data if r["cpu"] == cpu]
        settings = sorted(
            {(r["steps"], json.dumps(r.get("method_kwargs", {}), sort_keys=True)) for r in mine}
        )
        for steps, kwargs in settings:
            rs = sorted(
                (
                    r
                    for r in mine
                    if (r["steps"], json.dumps(r.get("method_kwargs", {}), sort_keys=True)) == (steps, kwargs)
                ),
                key=lambda r: r["seed"],
            )
            print(f"  {steps} steps, {kwargs}:")
            for r in rs:
                bal = r.get("knn_balanced_accuracy")
                bal_text = (
                    f", balanced {r['knn_balanced_accuracy_init']:.3f} -> {bal:.3f}"
                    if bal is not None
                    else ""
                )
                print(
                    f"    seed {r['seed']}: {r['knn_accuracy_init']:.3f} -> {r['knn_accuracy']:.3f}{bal_text}"
                    f" ({r['wall_s']:.0f} s; teacher slice-averaged {r.get('teacher_knn_accuracy')})"
                )
            init = statistics.mean(r["knn_accuracy_init"] for r in rs)
            final = statistics.mean(r["knn_accuracy"] for r in rs)
            print(f"    mean {init:.3f} -> {final:.3f} (lift {final - init:+.3f}, n={len(rs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument(
        "--method-kwargs", default="{}", help="extra distill settings (JSON), e.g. spatial_weight"
    )
    parser.add_argument("--teacher", help="a 2D checkpoint folder (default: train the SimCLR one)")
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "hfssl_distill_3d"))
    parser.add_argument("--data-dir", default=os.environ.get("HFSSL_DATA_DIR"))
    parser.add_argument("--summary", action="store_true", help="print the recorded runs and exit")
    parser.add_argument(
        "--bn-control", action="store_true", help="only the BatchNorm-recalibration control, per seed"
    )
    args = parser.parse_args()
    if args.summary:
        summary()
        return
    if args.bn_control:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            before, after = bn_control(seed, args.data_dir)
            row = {"control": "bn_recalibration", "student": "unet3d_encoder channels [8, 16, 32, 64]",
                   "dataset": "adrenalmnist3d28", "seed": seed, "knn_accuracy_init": before,
                   "knn_accuracy_bn_recalibrated": after, "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip
            with open(RESULTS, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, sort_keys=True) + "\n")
            print(json.dumps(row, sort_keys=True), flush=True)
        return
    work = Path(args.work_dir)
    teacher = args.teacher or str(work / "teacher_simclr" / "backbone")
    if not Path(teacher).is_dir():
        pretrain(TEACHER_SETTING, Path(teacher).parent)
    teacher_knn = teacher_slice_knn(teacher, args.data_dir)
    print(f"teacher {teacher}: slice-averaged kNN accuracy {teacher_knn:.3f}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        kwargs = {"teacher": teacher, **json.loads(args.method_kwargs)}
        argv = [*STUDENT_SETTING, "--method-kwargs", json.dumps(kwargs),
                "--max-steps", str(args.steps), "--seed", str(seed)]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            evals, wall = pretrain(argv, Path(tmp))
        assert evals[0]["step"] == 0, evals[0]
        row = {
            "method": "distill",
            "student": "unet3d_encoder channels [8, 16, 32, 64]",
            "dataset": "adrenalmnist3d28",
            "teacher": args.teacher or "simclr test_resnet breastmnist28 seed 0 (250 steps; TEACHER_SETTING)",
            "teacher_knn_accuracy": round(teacher_knn, 6),
            "method_kwargs": {k: v for k, v in kwargs.items() if k != "teacher"},
            "seed": seed,
            "steps": evals[-1]["step"],
            "knn_accuracy_init": evals[0]["knn_accuracy"],
            "knn_accuracy": evals[-1]["knn_accuracy"],
            "knn_balanced_accuracy_init": evals[0].get("knn_balanced_accuracy"),
            "knn_balanced_accuracy": evals[-1].get("knn_balanced_accuracy"),
            "knn_curve": [[r["step"], r["knn_accuracy"]] for r in evals],
            "wall_s": round(wall, 1),
            "cpu": cpu_model(),
            "date": time.strftime("%Y-%m-%d"),
        }
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
        print(json.dumps(row, sort_keys=True), flush=True)
    summary()


if __name__ == "__main__":
    main()
