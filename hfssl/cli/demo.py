"""``hfssl demo``: pretrain ROT and SimCLR briefly, evaluate them vs scratch, print a leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoArgs:
    """Options of ``hfssl demo``."""

    out: str = field(
        default="hfssl-demo", metadata={"help": "output folder (re-running reuses finished steps)"}
    )
    methods: list[str] = field(
        default_factory=lambda: ["rot", "simclr"], metadata={"help": "pretext methods to pretrain"}
    )
    backbone: str = field(
        default="resnet10t", metadata={"help": "timm backbone (resnet18 for the MedMNIST baseline; slower)"}
    )
    pretrain_steps: int = field(default=250, metadata={"help": "pretraining steps per method"})
    epochs: int = field(default=12, metadata={"help": "finetuning epochs"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "evaluation seeds"})
    max_train_samples: int | None = field(default=None, metadata={"help": "cap the labelled training rows"})
    checkpoint_store: str | None = field(
        default=None, metadata={"help": "pretrained checkpoints (default: OUT/checkpoints)"}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "data root (default: $HFSSL_DATA_DIR, else download, 560 KB)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, mps"})
    plots: bool = field(default=True, metadata={"help": "write plots (--no-plots to skip)"})


def run(argv: list[str]) -> int:
    from hfssl.utils.args import make_parser, parse

    parser = make_parser(
        "hfssl demo",
        "Pretrain two methods of different families (ROT, SimCLR) briefly on BreastMNIST 28 px, evaluate them and "
        "the scratch baseline (linear probe + finetuning, 3 seeds, imbalance-aware metrics) and write a "
        "leaderboard (md, csv, html, plots) into --out. About 10 minutes on a 2-core CPU; re-running reuses "
        "finished steps.",
        [DemoArgs],
        examples=[
            "hfssl demo",
            "hfssl demo --out my-demo --device cuda --pretrain-steps 2000 --epochs 100",
            "HFSSL_DATA_DIR=/data hfssl demo --out /tmp/demo",
        ],
    )
    (args,) = parse(parser, argv)
    from eval_suite.studies.demo import DemoSettings, run_demo

    settings = DemoSettings(
        methods=tuple(args.methods),
        backbone=args.backbone,
        pretrain_steps=args.pretrain_steps,
        epochs=args.epochs,
        seeds=tuple(args.seeds),
        max_train_samples=args.max_train_samples,
    )
    grid, report = run_demo(
        args.out,
        settings=settings,
        checkpoint_store=args.checkpoint_store,
        data_dir=args.data_dir,
        device=args.device,
        plots=args.plots,
    )
    text = report.markdown.read_text(encoding="utf-8")
    print("\n" + text.split("\n## Plots")[0].split("\n## Skipped inputs")[0].rstrip())
    print(
        f"\ndemo: {len(grid.computed)} steps computed, {len(grid.skipped)} reused; leaderboard: "
        f"{report.markdown}, {report.html}; plots in {report.markdown.parent / 'plots'}"
    )
    return 0
