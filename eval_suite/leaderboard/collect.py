"""Collect evaluation results from results folders, record files and model cards.

Inputs (any mix, in order):

* a results folder or record ``.json`` file: records are read with ``eval_suite.results.load_records``
  (malformed/partial/wrong-schema files come back as problems, never exceptions);
* a model card: a local ``README.md``, a folder holding one (a checkpoint folder), or a Hub repo id
  (``org/name``; ``README.md`` is fetched with ``hf_hub_download``, i.e. through the normal cache and
  ``HF_ENDPOINT``/``HF_HUB_OFFLINE``). Its ``model-index`` is turned into rows with
  ``eval_suite.results.eval_results_to_rows``.

Everything is normalised to ``RunSet`` s: one checkpoint evaluated in one ``Setting``
(dataset × protocol × data regime × policy), either with its per-seed records (full detail: per-seed
values, bootstrap CIs, per-sample test outputs) or with a card's aggregated summary (mean, std, seed
count and CI as the card encoding keeps them). ``table.build_leaderboard`` ranks them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfssl.errors import DataError
from hfssl.utils.logging import get_logger

logger = get_logger(__name__)

# The scratch protocol is the finetune recipe from random init: it is ranked with finetune results
# (its baseline role is what makes "delta vs scratch" meaningful).
PROTOCOL_GROUP = {"scratch": "finetune"}
SEGMENTATION_TASKS = {"segmentation"}


@dataclass(frozen=True, order=True)
class Setting:
    """What was evaluated, without the checkpoint: the leaderboard's grouping key."""

    dataset: str
    image_size: int | str | None  # int for square/cubic images, "WxH" text otherwise (DRIVE)
    protocol: str
    label_fraction: float
    imbalance_ratio: str
    policy: str
    task: str = field(default="", compare=False, hash=False)

    @property
    def kind(self) -> str:
        """``classification`` or ``segmentation`` (picks the default ranking metric)."""
        return (
            "segmentation"
            if self.task in SEGMENTATION_TASKS or self.protocol == "segmentation"
            else ("classification")
        )

    @property
    def dataset_label(self) -> str:
        return self.dataset if self.image_size is None else f"{self.dataset} ({self.image_size}px)"

    @property
    def regime_label(self) -> str:
        return f"labels {format_fraction(self.label_fraction)}, imbalance {self.imbalance_ratio}"

    def without_protocol(self) -> tuple:
        return (self.dataset, self.image_size, self.label_fraction, self.imbalance_ratio, self.policy)


@dataclass
class MetricSummary:
    """A metric over seeds: mean, std, seed count and 95 % CI (``ci_kind``: seeds or bootstrap)."""

    mean: float
    std: float | None = None
    n: int = 1
    ci95: tuple[float, float] | None = None
    ci_kind: str = ""


@dataclass
class RunSet:
    """One checkpoint in one setting: its seed records, or a card's aggregated summary."""

    checkpoint: str
    checkpoint_id: str
    is_baseline: bool
    setting: Setting
    source: str
    records: list[dict] = field(default_factory=list)
    summary: dict[str, MetricSummary] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(r.get("seed", 0)) for r in self.records)


@dataclass
class Collection:
    """What ``collect`` found: run sets, the raw records, and the problems it skipped."""

    runsets: list[RunSet] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    n_card_rows: int = 0
    record_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_records(self) -> int:
        return len(self.records)


def format_fraction(value: float) -> str:
    """1.0 -> '100%', 0.1 -> '10%', 0.015 -> '1.5%'."""
    return f"{value * 100:.4g}%"


def policy_label(policy: Mapping[str, Any] | None) -> str:
    """Canonical one-line policy text (the grouping key): ``sampler=none loss=ce augment=none mixup=0``."""
    policy = dict(policy or {})
    parts = [
        f"sampler={policy.pop('sampler', 'none') or 'none'}",
        f"loss={policy.pop('loss', 'ce') or 'ce'}",
        f"augment={policy.pop('augment', 'none') or 'none'}",
        f"mixup={_num_text(policy.pop('mixup', 0.0) or 0.0)}",
    ]
    parts += [f"{k}={_num_text(v)}" for k, v in sorted(policy.items())]
    return " ".join(parts)


def _num_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _ratio_text(value: Any) -> str:
    if value is None:
        return "natural"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def params_hash(params: Mapping[str, Any] | None) -> str:
    """Short hash of a protocol's hyper-parameters: runs with different recipes are never pooled."""
    import hashlib
    import json

    text = json.dumps(params or {}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _size_key(image_size: Any) -> int | str | None:
    """Records store an int side, or a list of sides for non-square images (DRIVE patches/images)."""
    if image_size is None:
        return None
    if isinstance(image_size, (list, tuple)):
        sides = [int(s) for s in image_size]
        return sides[0] if len(set(sides)) == 1 else "x".join(str(s) for s in sides)
    text = str(image_size)
    return int(text) if text.isdigit() else text


def setting_from_record(record: Mapping[str, Any]) -> Setting:
    dataset = record.get("dataset") or {}
    regime = record.get("regime") or {}
    protocol = (record.get("protocol") or {}).get("name", "")
    group = PROTOCOL_GROUP.get(protocol, protocol)
    head = ((record.get("protocol") or {}).get("params") or {}).get("ordinal_head")
    if head:  # graded labels: each ordinal head is its own setting, compared with scratch of that head
        group = f"{group} ({head} head)"
    image_size = dataset.get("image_size")
    return Setting(
        dataset=str(dataset.get("name", "")),
        image_size=_size_key(image_size),
        protocol=group,
        label_fraction=float(regime.get("label_fraction", 1.0)),
        imbalance_ratio=_ratio_text(regime.get("imbalance_ratio", "natural")),
        policy=policy_label(record.get("policy")),
        task=str(dataset.get("task", "")),
    )


def checkpoint_identity(record: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(display name, identity, is_baseline) of a record's checkpoint.

    Scratch / random-init runs are baselines; their identity is their display name (the same
    architecture from random init is one baseline whatever the weights file it came from).
    """
    ckpt = record.get("checkpoint") or {}
    protocol = (record.get("protocol") or {}).get("name", "")
    baseline = bool(ckpt.get("random_init")) or protocol == "scratch"
    name = str(ckpt.get("name") or ckpt.get("spec") or "unknown")
    ident = name if baseline else str(ckpt.get("content_hash") or ckpt.get("spec") or name)
    return name, ident, baseline


# ------------------------------------------------------------------------------------------ inputs


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def _card_path_for(path: Path) -> Path | None:
    if path.is_file() and path.suffix.lower() == ".md":
        return path
    if path.is_dir() and (path / "README.md").is_file():
        return path / "README.md"
    return None


def _has_json(path: Path) -> bool:
    return (
        path.is_file()
        and path.suffix.lower() == ".json"
        or (path.is_dir() and any(p.suffix == ".json" for p in path.iterdir() if p.is_file()))
    )


def _is_checkpoint_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and (path / "README.md").is_file()


def collect(
    inputs: Sequence[str | os.PathLike],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Collection:
    """Read every input into one ``Collection`` (see the module docstring for what an input is).

    Problems (malformed records, cards without results, unreachable repos) are collected in
    ``Collection.problems`` with the file or repo they concern; nothing is silently dropped.
    Raises ``DataError`` only when an input is neither a path nor a repo id.
    """
    from eval_suite.results import load_records

    out = Collection()
    seen_ids: set[str] = set()
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if path.exists():
            card = _card_path_for(path)
            # A checkpoint folder holds config.json too: that is a card source, not records.
            if _has_json(path) and not _is_checkpoint_folder(path):
                records, problems = load_records(path)
                out.problems.extend(problems)
                for record in records:
                    rid = str(record.get("record_id", ""))
                    if rid and rid in seen_ids:
                        continue  # the same run given twice (folder + file): count it once
                    seen_ids.add(rid)
                    out.records.append(record)
                    if rid:
                        out.record_paths[rid] = _record_file(path, rid)
            if card is not None:
                _add_card(out, card.read_text(encoding="utf-8"), source=str(card))
            if card is None and not _has_json(path):
                out.problems.append(f"{path}: no result records (*.json) and no model card (README.md)")
            continue
        if _looks_like_repo_id(text):
            try:
                card_text = _download_card(text, revision=revision, token=token, cache_dir=cache_dir)
            except DataError as err:
                out.problems.append(f"{text}: {err.one_line()}")
                continue
            _add_card(out, card_text, source=f"hub:{text}", repo_id=text)
            continue
        raise DataError(
            f"{text} is neither an existing file/folder nor a Hub repo id",
            "pass a results folder, a record .json, a model card/checkpoint folder, or ORG/NAME",
        )
    out.runsets.extend(_runsets_from_records(out.records))
    return out


def _record_file(given: Path, record_id: str) -> Path:
    return given if given.is_file() else given / f"{record_id}.json"


def _download_card(repo_id: str, *, revision, token, cache_dir) -> str:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        path = hf_hub_download(repo_id, "README.md", revision=revision, token=token, cache_dir=cache_dir)
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise DataError(
            f"Hub repo {repo_id} (revision {revision or 'main'}) not found: {type(exc).__name__}",
            "check the repo id, the revision and your token (HF_TOKEN)",
        ) from exc
    except EntryNotFoundError as exc:
        raise DataError(
            f"Hub repo {repo_id} has no README.md model card", "push the checkpoint with its card"
        ) from exc
    except Exception as exc:  # offline without cache, connection refused, HTTP errors
        raise DataError(
            f"cannot fetch the model card of {repo_id}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "check the network/HF_ENDPOINT, or unset HF_HUB_OFFLINE if the card is not cached yet",
        ) from exc
    return Path(path).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ records


def _runsets_from_records(records: Iterable[dict]) -> list[RunSet]:
    groups: dict[tuple[str, Setting, str], RunSet] = {}
    for record in records:
        if record.get("corruption"):  # corrupted test splits go to the robustness section, not the ranking
            continue
        name, ident, baseline = checkpoint_identity(record)
        setting = setting_from_record(record)
        params = params_hash((record.get("protocol") or {}).get("params"))
        key = (ident, setting, params)
        rs = groups.get(key)
        if rs is None:
            dataset = record.get("dataset") or {}
            rs = groups[key] = RunSet(
                checkpoint=name,
                checkpoint_id=ident,
                is_baseline=baseline,
                setting=setting,
                source="records",
                class_names=[str(c) for c in dataset.get("class_names") or []],
                extras={"params": params},
            )
        rs.records.append(record)
    for rs in groups.values():
        rs.records.sort(key=lambda r: int(r.get("seed", 0)))
    return _disambiguate(list(groups.values()))


def _disambiguate(runsets: list[RunSet]) -> list[RunSet]:
    """One checkpoint evaluated in one setting with different recipes (protocol params) stays as
    separate rows, named ``name [params <hash>]``, instead of pooling unlike runs as seeds."""
    count: dict[tuple[str, Setting], int] = {}
    for rs in runsets:
        count[(rs.checkpoint_id, rs.setting)] = count.get((rs.checkpoint_id, rs.setting), 0) + 1
    for rs in runsets:
        if count[(rs.checkpoint_id, rs.setting)] > 1:
            rs.checkpoint = f"{rs.checkpoint} [params {rs.extras.get('params', '?')}]"
    return runsets


def record_metric(record: Mapping[str, Any], metric: str) -> float | None:
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return None if math.isnan(value) else value


# ------------------------------------------------------------------------------------------ cards


def _add_card(out: Collection, card_text: str, *, source: str, repo_id: str | None = None) -> None:
    from huggingface_hub import ModelCard

    from eval_suite.results import eval_results_to_rows

    try:
        card = ModelCard(card_text, ignore_metadata_errors=True)
        eval_results = card.data.eval_results or []
        model_name = getattr(card.data, "model_name", None)
    except Exception as exc:  # malformed YAML / model-index: report and skip the card
        out.problems.append(f"{source}: model card cannot be parsed ({type(exc).__name__}: {exc})")
        return
    if not eval_results:
        out.problems.append(f"{source}: model card has no model-index evaluation results")
        return
    try:
        rows = eval_results_to_rows(eval_results, model_name=model_name or repo_id)
    except Exception as exc:
        out.problems.append(f"{source}: model-index results cannot be read ({type(exc).__name__}: {exc})")
        return
    out.n_card_rows += len(rows)
    runsets: dict[tuple, RunSet] = {}
    for i, row in enumerate(rows):
        try:
            rs_key, rs, metric, summary = _card_row(
                row, model_name=model_name or repo_id or source, source=source
            )
        except (KeyError, TypeError, ValueError) as exc:
            out.problems.append(f"{source}: result row {i} skipped ({type(exc).__name__}: {exc})")
            continue
        existing = runsets.setdefault(rs_key, rs)
        existing.summary[metric] = summary
    out.runsets.extend(_disambiguate(list(runsets.values())))


def _card_row(
    row: Mapping[str, Any], *, model_name: str, source: str
) -> tuple[tuple, RunSet, str, MetricSummary]:
    """One ``eval_results_to_rows`` row -> (key, RunSet shell, metric, summary).

    Mirrors ``_runsets_from_records`` + ``table.summarise_runset`` so that a card gives the same
    table as the records it was written from (means, seed counts, CIs; std only with ≥ 2 seeds).
    """
    protocol = str(row["protocol"])
    image_size = row.get("image_size")
    setting = Setting(
        dataset=str(row["dataset"]),
        image_size=_size_key(image_size),
        protocol=PROTOCOL_GROUP.get(protocol, protocol),
        label_fraction=float(row["label_fraction"] if row.get("label_fraction") is not None else 1.0),
        imbalance_ratio=_ratio_text(row.get("imbalance_ratio")),
        policy=policy_label(row.get("policy")),
        task=str(row.get("task") or ""),
    )
    baseline = bool(row.get("random_init")) or protocol == "scratch"
    name = str(row.get("model_name") or model_name)
    params = params_hash(row.get("protocol_params"))
    ci = row.get("ci95")
    n = int(row.get("n_seeds") or 1)
    std = row.get("std")
    value = row["value"]
    if value is None:
        raise ValueError(f"metric {row.get('metric')} has no value")
    summary = MetricSummary(
        mean=float(value),
        std=float(std) if std is not None and n >= 2 else None,
        n=n,
        ci95=None if ci is None else (float(ci[0]), float(ci[1])),
        ci_kind=str(row.get("ci_kind") or "") if ci is not None else "",
    )
    rs = RunSet(
        checkpoint=name,
        checkpoint_id=name,
        is_baseline=baseline,
        setting=setting,
        source=source,
        extras={"params": params},
    )
    return (name, setting, params), rs, str(row["metric"]), summary
