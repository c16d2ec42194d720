"""``hfssl push CHECKPOINT_DIR --repo-id ORG/NAME``: one commit with weights, config, model card and results."""

from __future__ import annotations

from dataclasses import dataclass, field

EXAMPLES = (
    "hfssl push runs/simclr/backbone --repo-id my-org/simclr-resnet18-breastmnist",
    "hfssl push runs/simclr/backbone --repo-id my-org/simclr-r18 --results results/ --private",
    "hfssl push runs/simclr/backbone --repo-id my-org/simclr-r18 --revision v2 --commit-message 'longer run'",
    "hfssl push exports/simclr-r18-timm --repo-id my-org/simclr-r18-timm   # an 'hfssl export-timm' folder",
    "hfssl push runs/rot/backbone --repo-id my-org/rot-r18 --dataset-ids breastmnist=my-org/breastmnist",
    "HF_ENDPOINT=http://localhost:8080 hfssl push runs/rot/backbone --repo-id me/rot   # another Hub endpoint",
    "hfssl push adapters/rad-dino-breast --repo-id my-org/rad-dino-breast-lora   # an --save-adapter folder",
)

DESCRIPTION = (
    "Push a checkpoint folder (save_pretrained / 'hfssl pretrain' OUTPUT_DIR/backbone, or 'hfssl export-timm' "
    "output) to the Hugging Face Hub as ONE commit: config.json, model.safetensors, a model card README.md "
    "(rendered from model_cards/, with the evaluation results as model-index metadata), the checkpoint's "
    "evaluation records under eval_results/ and, for datasets given a Hub id, .eval_results/hfssl.yaml. "
    "Evaluation records are read from --results (default: CHECKPOINT_DIR/eval_results/ when it exists); only "
    "records of these weights (same content_hash) are used. Pushing an unchanged folder again makes no commit. "
    "A LoRA adapter folder ('hfssl evaluate --protocol lora --save-adapter DIR') is pushed in peft's format "
    "with a model card from model_cards/adapter.md.j2. "
    "Nothing is written locally. Log in first with 'hf auth login' or set HF_TOKEN; HF_ENDPOINT selects the Hub."
)


@dataclass
class PushArguments:
    """Options of ``hfssl push``."""

    repo_id: str = field(metadata={"help": "target Hub repo, ORG/NAME (created if missing)"})
    private: bool = field(
        default=False, metadata={"help": "create the repo as private (when it does not exist yet)"}
    )
    revision: str | None = field(
        default=None, metadata={"help": "branch to commit to (created from main if missing; default: main)"}
    )
    commit_message: str | None = field(
        default=None,
        metadata={"help": "commit message (default: 'Upload <backbone> (<methods>) with hfssl')"},
    )
    results: str | None = field(
        default=None,
        metadata={
            "help": "folder of evaluation records (*.json) (default: CHECKPOINT_DIR/eval_results if present)"
        },
    )
    license: str = field(default="apache-2.0", metadata={"help": "licence of the weights, for the card"})
    template: str | None = field(
        default=None, metadata={"help": "model card template (default: model_cards/backbone.md.j2)"}
    )
    dataset_ids: list[str] = field(
        default_factory=list,
        metadata={
            "help": "NAME=ORG/DATASET pairs: Hub benchmark ids for .eval_results/ entries (others stay in model-index only)"
        },
    )
    token: str | None = field(
        default=None, metadata={"help": "Hub token (default: the logged-in one / HF_TOKEN)"}
    )


def build_parser():
    from hfssl.utils.args import make_parser

    parser = make_parser("hfssl push", DESCRIPTION, [PushArguments], EXAMPLES)
    parser.add_argument("checkpoint_dir", metavar="CHECKPOINT_DIR", help="checkpoint folder to push")
    return parser


def _dataset_ids(pairs: list[str]) -> dict[str, str]:
    from hfssl.errors import ConfigError

    out = {}
    for pair in pairs:
        name, sep, repo = pair.partition("=")
        if not sep or not name or "/" not in repo:
            raise ConfigError(
                f"--dataset-ids entry {pair!r} is not NAME=ORG/DATASET", "e.g. breastmnist=my-org/breastmnist"
            )
        out[name.strip()] = repo.strip()
    return out


def run(argv: list[str]) -> int:
    from hfssl.utils.args import parse

    parsed = parse(build_parser(), argv)
    args, positional = parsed[0], parsed[-1]
    import eval_suite.results
    from hfssl.hub.lora import is_adapter_folder
    from hfssl.hub.push import push_adapter, push_checkpoint

    if is_adapter_folder(positional.checkpoint_dir):
        result = push_adapter(
            positional.checkpoint_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            license=args.license,
            token=args.token,
        )
        print(result.summary())
        print(result.commit_url)
        return 0
    result = push_checkpoint(
        positional.checkpoint_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        results_dir=args.results,
        record_schema=eval_suite.results,  # the evaluator owns the record schema
        dataset_ids=_dataset_ids(args.dataset_ids),
        license=args.license,
        template=args.template,
        token=args.token,
    )
    print(result.summary())
    print(result.commit_url)
    return 0
