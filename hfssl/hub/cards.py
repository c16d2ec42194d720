"""Model cards: render ``model_cards/*.md.j2`` into a :class:`huggingface_hub.ModelCard`.

The card's YAML header is a :class:`huggingface_hub.ModelCardData` (licence, ``library_name``,
tags with the method family, datasets, ``model-index`` built from
:class:`huggingface_hub.EvalResult` s); the body is the Jinja template ``backbone.md.j2`` and its
partials (details, how to load it, results, limitations, citation). Facts come from the
checkpoint's ``config.json`` provenance (``pretext_methods``, ``pretrain_dataset``,
``pretrain_image_size``, ``pretrain_epochs``, ``pretrain_seed``, ``pretrain_init_from``,
``hfssl_version``) and, when the checkpoint is a pretraining run's ``backbone/`` folder, from
``../training_args.json``.

Templates are rendered with ``StrictUndefined``: a template that uses a field hfssl does not
provide is a :class:`~hfssl.errors.ConfigError`, never a silently blank card. Every card is
parsed back (``ModelCard(text)``) and its ``model-index`` compared with what was rendered before
it is returned.

Rendering is deterministic (no dates, sorted keys), so pushing an unchanged folder twice yields a
byte-identical ``README.md`` - which is what makes ``hfssl push`` idempotent.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hfssl.errors import CheckpointError, ConfigError
from hfssl.pretext.registry import method_family

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import EvalResult, EvalResultEntry, ModelCard

DEFAULT_TEMPLATE = "backbone.md.j2"
DEFAULT_LICENSE = "apache-2.0"
TEMPLATES_ENV = "HFSSL_MODEL_CARDS_DIR"

PAPER_CITATION = """@article{zhang2023dive,
  title={Dive into the details of self-supervised learning for medical image analysis},
  author={Zhang, Chuyan and Zheng, Hao and Gu, Yun},
  journal={Medical Image Analysis},
  volume={89},
  pages={102879},
  year={2023},
  doi={10.1016/j.media.2023.102879}
}"""

# training_args.json keys worth showing on a card (method_kwargs are shown entry by entry)
_HYPERPARAMETER_KEYS = (
    "method",
    "optim",
    "learning_rate",
    "weight_decay",
    "lr_scheduler_type",
    "warmup_steps",
    "total_batch_size",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "total_steps",
    "mixed_precision",
    "augmentation",
)


# architecture in config.json -> the transformers Auto class that loads it after ``import hfssl``
_AUTO_CLASSES = {
    "HfsslModel": "AutoModel",
    "HfsslForImageClassification": "AutoModelForImageClassification",
    "HfsslForSegmentation": "AutoModelForSemanticSegmentation",
}


def templates_dir() -> Path:
    """Where the card templates live: ``$HFSSL_MODEL_CARDS_DIR``, else the installed package's
    ``hfssl/model_cards/`` (a wheel carries the repository's ``model_cards/`` there, see
    ``setup.py``), else the source checkout's top-level ``model_cards/`` (editable installs)."""
    env = os.environ.get(TEMPLATES_ENV)
    candidates = [Path(env)] if env else []
    packaged = importlib.resources.files("hfssl") / "model_cards"
    if isinstance(packaged, Path):  # an installed folder (not a zip archive)
        candidates.append(packaged)
    candidates.append(Path(__file__).resolve().parents[2] / "model_cards")
    for candidate in candidates:
        if (candidate / DEFAULT_TEMPLATE).is_file():
            return candidate
    raise ConfigError(
        f"model card templates not found (looked in {', '.join(map(str, candidates))})",
        f"set {TEMPLATES_ENV} to a folder holding {DEFAULT_TEMPLATE} and its partials",
    )


# ------------------------------------------------------------------------------------ facts
@dataclass
class CheckpointFacts:
    """What a card says about a checkpoint folder, gathered from its files."""

    folder: Path
    kind: str  # "hfssl" (save_pretrained folder) | "timm" (export-timm folder)
    config: dict[str, Any]
    training_args: dict[str, Any] | None = None
    extra_files: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        if self.kind == "timm":
            return list((self.config.get("hfssl") or {}).get("pretext_methods") or [])
        return list(self.config.get("pretext_methods") or [])


def read_checkpoint(folder: str | os.PathLike) -> CheckpointFacts:
    """Check that ``folder`` is a pushable checkpoint and gather its facts.

    Accepted: an hfssl ``save_pretrained`` folder (``config.json`` with ``model_type`` ``hfssl``
    + ``model.safetensors``) or an ``hfssl export-timm`` folder (``config.json`` with
    ``architecture`` + ``model.safetensors``). Anything else is a :class:`CheckpointError`.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is not a folder", "give the checkpoint folder written by save_pretrained"
        )
    config_path = path / "config.json"
    weights = path / "model.safetensors"
    if not config_path.is_file():
        raise CheckpointError(
            f"{path} is not a checkpoint: it has no config.json",
            "give a folder written by save_pretrained / hfssl pretrain (OUTPUT_DIR/backbone) or hfssl export-timm",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path} is not valid JSON ({err})", "re-save the checkpoint") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} is not a JSON object", "re-save the checkpoint")
    model_type = str(config.get("model_type", ""))
    if model_type.startswith("hfssl"):
        kind = "hfssl"
    elif "architecture" in config and "pretrained_cfg" in config:
        kind = "timm"
    else:
        raise CheckpointError(
            f"{path} holds a {model_type or 'unknown'!r} model, not an hfssl checkpoint",
            "push folders written by hfssl (save_pretrained, hfssl pretrain's backbone/, hfssl export-timm)",
        )
    if not weights.is_file():
        from hfssl.hub.load_any import PICKLE_NAMES

        pickles = [n for n in PICKLE_NAMES if (path / n).is_file()]
        what = f"only pickle weights ({', '.join(pickles)})" if pickles else "no model.safetensors"
        raise CheckpointError(
            f"{path} has {what}", "re-save it with save_pretrained (safetensors); hfssl never pushes pickle"
        )
    _check_weights(path, weights, model_type)
    training_args = None
    args_path = path.parent / "training_args.json"
    if kind == "hfssl" and args_path.is_file():
        try:
            loaded = json.loads(args_path.read_text(encoding="utf-8"))
            training_args = loaded if isinstance(loaded, dict) else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            training_args = None  # provenance only: a broken file one folder up must not block a push
    return CheckpointFacts(folder=path, kind=kind, config=config, training_args=training_args)


def _check_weights(path: Path, weights: Path, model_type: str) -> None:
    """Refuse weights that cannot be read (truncated, corrupt) or, for an ``hfssl`` backbone, that do not
    fit its config: a push must never publish a checkpoint nobody can load."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"{weights} is not a readable safetensors file ({' '.join(str(err).split())[:200]})",
            "re-save the checkpoint (save_pretrained) or copy it again; a truncated file cannot be pushed",
        ) from err
    if model_type == "hfssl":
        from hfssl.models import HfsslModel

        HfsslModel.from_pretrained(
            path
        )  # strict: CheckpointError / ConfigError when weights and config differ


# ------------------------------------------------------------------------------------ card
def build_card_data(
    facts: CheckpointFacts,
    *,
    model_name: str,
    eval_results: Sequence[EvalResult] = (),
    license: str = DEFAULT_LICENSE,
) -> Any:
    """The card's YAML header as a :class:`huggingface_hub.ModelCardData`."""
    from huggingface_hub import ModelCardData

    cfg = facts.config
    methods = facts.methods
    backbone = _backbone(facts)
    tags = ["medical-imaging", "self-supervised-learning", "hfssl"]
    families = sorted({method_family(m) for m in methods} - {"unknown"})
    if len(methods) > 1:
        families = sorted(set(families) | {"multi"})
    tags += families + [m for m in methods if m not in tags]
    tags.append(f"{_spatial_dims(facts)}d")
    if backbone:
        tags.append(backbone.split(".")[0])
    if facts.kind == "timm":
        tags.append("timm")
    datasets = []
    pretrain_dataset = cfg.get("pretrain_dataset")
    if pretrain_dataset:
        datasets.append(str(pretrain_dataset))
    for result in eval_results:
        if result.dataset_type not in datasets:
            datasets.append(result.dataset_type)
    data = ModelCardData(
        license=license,
        library_name="timm" if facts.kind == "timm" else "hfssl",
        tags=_unique(tags),
        datasets=datasets or None,
        pipeline_tag="image-feature-extraction",
        model_name=model_name,
        eval_results=list(eval_results) or None,
    )
    return data


def render_card(
    checkpoint: str | os.PathLike | CheckpointFacts,
    *,
    repo_id: str,
    eval_results: Sequence[EvalResult] = (),
    license: str = DEFAULT_LICENSE,
    template: str | os.PathLike | None = None,
    has_eval_result_files: bool = False,
    records_in_repo: bool = False,
) -> ModelCard:
    """Render the model card of ``checkpoint`` for ``repo_id``; parsed back and checked before returning.

    Args:
        checkpoint: checkpoint folder (or facts from :func:`read_checkpoint`).
        repo_id: ``ORG/NAME`` the card will live in (used in the loading snippets).
        eval_results: ``EvalResult`` s for ``model-index`` and the results table.
        license: SPDX-like licence id for the weights.
        template: a template file (default: ``model_cards/backbone.md.j2``); its folder is the
            search path for ``{% include %}`` partials.
        has_eval_result_files / records_in_repo: what else the same commit carries (mentioned in the text).
    """
    import jinja2
    from huggingface_hub import ModelCard

    facts = checkpoint if isinstance(checkpoint, CheckpointFacts) else read_checkpoint(checkpoint)
    model_name = repo_id.split("/")[-1]
    data = build_card_data(facts, model_name=model_name, eval_results=eval_results, license=license)
    context = _template_context(facts, repo_id=repo_id, model_name=model_name, eval_results=eval_results)
    context.update(has_eval_result_files=has_eval_result_files, records_in_repo=records_in_repo)
    template_path = Path(template) if template is not None else templates_dir() / DEFAULT_TEMPLATE
    if not template_path.is_file():
        raise ConfigError(
            f"model card template {template_path} does not exist", "give an existing .md.j2 file"
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_path.parent)),
        undefined=jinja2.StrictUndefined,  # a missing field fails loudly instead of leaving a hole
        keep_trailing_newline=True,
        autoescape=False,  # markdown, not HTML
    )
    try:
        text = env.get_template(template_path.name).render(
            {**data.to_dict(), **context, "card_data": data.to_yaml()}
        )
    except jinja2.UndefinedError as err:
        raise ConfigError(
            f"model card template {template_path.name} uses a field hfssl does not provide ({err.message})",
            f"use only these fields: {', '.join(sorted({'card_data', *data.to_dict(), *context}))}",
        ) from err
    except jinja2.TemplateError as err:
        raise ConfigError(
            f"model card template {template_path.name} is invalid: {err}", "fix the template"
        ) from err
    card = ModelCard(text)
    check_card(card, data)
    return card


def check_card(card: ModelCard, expected: Any) -> None:
    """The rendered card must carry the metadata it was rendered from (header present, same numbers)."""
    got = card.data.to_dict()
    want = expected.to_dict()
    if not got:
        raise ConfigError(
            "the rendered model card has no YAML metadata header",
            "start the template with '---', '{{ card_data }}', '---'",
        )
    for key in ("license", "library_name", "tags", "model-index"):
        if got.get(key) != want.get(key):
            raise ConfigError(
                f"the rendered model card's {key!r} does not parse back to what was rendered",
                "keep '{{ card_data }}' verbatim in the template's YAML header",
            )


# ------------------------------------------------------------------------------------ eval results
def eval_result_entries(
    eval_results: Sequence[EvalResult], dataset_ids: Mapping[str, str]
) -> list[EvalResultEntry]:
    """``.eval_results/*.yaml`` entries for results on datasets that have a Hub benchmark id.

    The Hub's eval-results format points at a benchmark *dataset repo*; hfssl's datasets are named
    (``breastmnist``), not Hub ids, so only datasets given an id in ``dataset_ids`` (or whose name
    already is an ``ORG/NAME`` id) get entries. The task id is ``<task>/<metric>``.
    """
    from huggingface_hub import EvalResultEntry

    entries = []
    for result in eval_results:
        dataset_id = dataset_ids.get(result.dataset_type) or (
            result.dataset_type if "/" in result.dataset_type else None
        )
        if dataset_id is None:
            continue
        task = result.task_name or result.task_type
        notes = ", ".join(
            x for x in (result.dataset_split and f"split={result.dataset_split}", result.source_name) if x
        )
        entries.append(
            EvalResultEntry(
                dataset_id=dataset_id,
                task_id=f"{task}/{result.metric_type}",
                value=result.metric_value,
                notes=notes or None,
            )
        )
    return entries


def eval_results_yaml(entries: Sequence[EvalResultEntry]) -> str:
    """The ``.eval_results/hfssl.yaml`` text for ``entries`` (huggingface_hub's serialisation)."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    return yaml.safe_dump(eval_result_entries_to_yaml(list(entries)), sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------------------------ helpers
def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _spatial_dims(facts: CheckpointFacts) -> int:
    return 2 if facts.kind == "timm" else int(facts.config.get("spatial_dims", 2))


def _backbone(facts: CheckpointFacts) -> str:
    if facts.kind == "timm":
        return str((facts.config.get("hfssl") or {}).get("backbone") or facts.config.get("architecture"))
    return str(facts.config.get("backbone", ""))


def _template_context(
    facts: CheckpointFacts, *, repo_id: str, model_name: str, eval_results: Sequence[EvalResult]
) -> dict[str, Any]:
    cfg = facts.config
    args = facts.training_args or {}
    if facts.kind == "timm":
        pcfg = cfg.get("pretrained_cfg") or {}
        input_size = pcfg.get("input_size") or [cfg.get("num_channels", 3), None, None]
        in_chans, image_size = int(input_size[0]), input_size[-1]
        embed_dim = cfg.get("num_features")
        mean, std = pcfg.get("mean"), pcfg.get("std")
        format_description = f"timm (`{cfg.get('architecture')}`, `model.safetensors` + `config.json`)"
        hfssl_version = (cfg.get("hfssl") or {}).get("hfssl_version")
    else:
        in_chans, image_size = int(cfg.get("in_chans", 1)), cfg.get("image_size")
        embed_dim = cfg.get("feature_dim")
        mean, std = cfg.get("image_mean"), cfg.get("image_std")
        architectures = ", ".join(cfg.get("architectures") or ["HfsslModel"])
        format_description = f"hfssl / transformers (`{architectures}`, `model.safetensors` + `config.json`)"
        hfssl_version = cfg.get("hfssl_version")
    methods = facts.methods
    pretrain_dataset = cfg.get("pretrain_dataset") or args.get("dataset")
    method_text = " + ".join(methods) if methods else "an unrecorded pretext method"
    summary = (
        f"A {_spatial_dims(facts)}D `{_backbone(facts)}` backbone pretrained with self-supervision "
        f"({method_text}) on {pretrain_dataset or 'an unrecorded dataset'} with "
        "hfssl for medical image analysis. It outputs a pooled embedding and "
        "multi-scale feature maps; finetune or probe it for classification or segmentation."
    )
    hardware = "not recorded"
    if args:
        parts = []
        if args.get("hardware"):
            parts.append(str(args["hardware"]))
        if args.get("num_processes"):
            parts.append(f"{args['num_processes']} process(es)")
        if args.get("mixed_precision"):
            parts.append(f"mixed precision: {args['mixed_precision']}")
        if args.get("use_cpu"):
            parts.append("CPU")
        hardware = ", ".join(parts) or hardware
    precision_text = _precision_text(args)
    runtime = args.get("train_runtime") or args.get("training_time_s")
    training_time = _duration(runtime) if isinstance(runtime, (int, float)) else "not recorded"
    normalisation = "none (pixel values in [0, 1])"
    if mean is not None and std is not None:
        normalisation = f"mean {list(mean)}, std {list(std)} on [0, 1] pixel values"
    architecture = (cfg.get("architectures") or ["HfsslModel"])[0] if facts.kind == "hfssl" else "timm"
    return {
        "repo_id": repo_id,
        "architecture": architecture,
        "auto_class": _AUTO_CLASSES.get(architecture, "AutoModelForPreTraining"),
        "model_name": model_name,
        "summary": summary,
        "format_description": format_description,
        "is_timm_export": facts.kind == "timm",
        "backbone": _backbone(facts),
        "spatial_dims": _spatial_dims(facts),
        "in_chans": in_chans,
        "image_size": image_size,
        "embed_dim": embed_dim,
        "methods": [{"name": m, "family": method_family(m)} for m in methods],
        "pretrain_dataset": pretrain_dataset,
        "pretrain_image_size": cfg.get("pretrain_image_size"),
        "pretrain_epochs": cfg.get("pretrain_epochs"),
        "pretrain_seed": cfg.get("pretrain_seed"),
        "init_from": _init_from_text(cfg.get("pretrain_init_from") or args.get("init_source")),
        "hfssl_version": hfssl_version,
        "hardware": hardware,
        "precision": precision_text,
        "training_time": training_time,
        "normalisation": normalisation,
        "hyperparameters": _hyperparameters(args),
        "results": list(eval_results),
        "paper_citation": PAPER_CITATION,
        "dataset_citations": _dataset_citations(
            [pretrain_dataset, *(r.dataset_type for r in eval_results)]
            if pretrain_dataset
            else [r.dataset_type for r in eval_results]
        ),
    }


def _init_from_text(record: Any) -> str | None:
    """The card's "Initialised from" cell for a ``pretrain_init_from`` record (``None``: random init)."""
    if not isinstance(record, Mapping) or not record.get("spec"):
        return None

    def cell(value: Any) -> str:  # one table cell: no line breaks, pipes or backticks from the record
        return " ".join(str(value).split()).replace("|", "/").replace("`", "'")

    kind = "pretext model" if record.get("kind") == "pretext_model" else "backbone"
    facts = [kind]
    if record.get("pretext_methods"):
        facts.append(" + ".join(cell(m) for m in record["pretext_methods"]))
    if record.get("pretrain_dataset"):
        facts.append(f"pretrained on {cell(record['pretrain_dataset'])}")
    text = f"`{cell(record['spec'])}` ({', '.join(facts)})"
    if record.get("sha256"):
        text += f", weights sha256 `{cell(record['sha256'])}`"
    return text


def _hyperparameters(args: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [(key, json.dumps(args[key])) for key in _HYPERPARAMETER_KEYS if args.get(key) is not None]
    for key, value in sorted((args.get("method_kwargs") or {}).items()):
        rows.append((f"method_kwargs.{key}", json.dumps(value, sort_keys=True)))
    return rows


def _precision_text(args: Mapping[str, Any]) -> str:
    """``"bf16 autocast, channels_last memory format"`` from ``training_args.json``'s resolved runtime."""
    precision = args.get("mixed_precision")
    if not precision:
        return "not recorded"
    text = "fp32" if precision == "no" else f"{precision} autocast"
    layout = args.get("memory_format")
    if layout is None and "channels_last_resolved" in args:
        layout = "channels-last" if args["channels_last_resolved"] else "contiguous"
    if layout:
        text += f", {layout} memory format"
    reason = args.get("runtime_reason")
    return f"{text} ({reason})" if reason else text


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "not recorded"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _dataset_citations(names: Sequence[str | None]) -> list[dict[str, str]]:
    """BibTeX of the datasets named (MedMNIST subsets, DRIVE); unknown names get no entry."""
    from hfssl.data.drive import DRIVE_CITATION
    from hfssl.data.medmnist_info import MEDMNIST, MEDMNIST_CITATION

    out: dict[str, dict[str, str]] = {}
    for raw in names:
        if not raw:
            continue
        name = str(raw).lower().removeprefix("medmnist:")
        if name in MEDMNIST and "medmnist" not in out:
            out["medmnist"] = {
                "text": f"The MedMNIST data ({MEDMNIST[name].license}; also cite the source dataset of each subset):",
                "bibtex": MEDMNIST_CITATION,
            }
        elif name == "drive" and "drive" not in out:
            out["drive"] = {"text": "The DRIVE data (research use only):", "bibtex": DRIVE_CITATION}
    return list(out.values())
