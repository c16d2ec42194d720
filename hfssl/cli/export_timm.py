"""``hfssl export-timm CHECKPOINT OUT_DIR``: write a 2D backbone in timm's own format."""

from __future__ import annotations

from dataclasses import dataclass, field

from hfssl.utils.args import make_parser, parse

EXAMPLES = (
    "hfssl export-timm runs/simclr/backbone exports/simclr-resnet18-timm",
    "hfssl export-timm ORG/hfssl-resnet18-breastmnist exports/r18 --overwrite",
    "python -c \"import hfssl, timm; timm.create_model('local-dir:exports/r18', pretrained=True)\"",
)


@dataclass
class ExportTimmArguments:
    """Options of ``hfssl export-timm``."""

    overwrite: bool = field(default=False, metadata={"help": "replace OUT_DIR if it exists and is not empty"})


def build_parser():
    parser = make_parser(
        "hfssl export-timm",
        "Export an hfssl 2D backbone checkpoint to timm's format (model.safetensors + config.json with "
        "architecture, model_args and pretrained_cfg), loadable with timm.create_model('local-dir:OUT_DIR') or "
        "'hf-hub:ORG/NAME'. Small-stem ResNets load as hfssl_<resnet>_smallstem: import hfssl before timm "
        "for those. 3D backbones are not timm models and are refused.",
        [ExportTimmArguments],
        EXAMPLES,
    )
    parser.add_argument("checkpoint", help="hfssl checkpoint folder (save_pretrained output) or Hub repo id")
    parser.add_argument("output_dir", help="folder to write the timm checkpoint to")
    return parser


def run(argv: list[str]) -> int:
    parsed = parse(build_parser(), argv)
    args, positional = parsed[0], parsed[-1]
    from hfssl.models.export_timm import export_timm

    out = export_timm(positional.checkpoint, positional.output_dir, overwrite=args.overwrite)
    print(f"wrote {out / 'model.safetensors'} and {out / 'config.json'}")
    return 0
