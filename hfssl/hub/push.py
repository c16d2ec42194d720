"""Push a checkpoint folder to the Hub: one commit with weights, config, model card and results.

``push_checkpoint(folder, "org/name")`` uploads, in ONE commit:

* ``config.json`` and ``model.safetensors`` (nothing else of the folder; never pickle);
* ``README.md``: the model card rendered from ``model_cards/`` (:mod:`hfssl.hub.cards`), with the
  evaluation results as ``model-index`` metadata;
* ``eval_results/<record>.json``: the evaluation records of THIS checkpoint (matched by the
  weights' SHA-256 ``content_hash``), read from ``results_dir`` - by default the folder's own
  ``eval_results/`` if it exists (``hfssl evaluate --results-dir CHECKPOINT/eval_results``);
  the record schema (validation, mean over seeds as ``EvalResult`` s) is the evaluator's, handed
  in as ``record_schema`` (``hfssl push`` passes ``eval_suite.results``): hfssl does not own it;
* ``.eval_results/hfssl.yaml``: the Hub's eval-results format, for results on datasets given a Hub
  benchmark id (``dataset_ids``).

It is idempotent: the remote files are compared (git blob SHA-1 / LFS SHA-256) with what would be
uploaded, and if nothing differs no commit is made. The returned :class:`PushResult` says what was
uploaded, what was already there, and which records were left out. Nothing is written locally.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hfssl.errors import ConfigError, DataError
from hfssl.hub import cards
from hfssl.hub.remote import check_repo_id, hub_errors, with_retries
from hfssl.utils.logging import get_logger

logger = get_logger(__name__)

RESULTS_FOLDER = "eval_results"
"""Default results folder inside a checkpoint folder, and the repo folder records are uploaded to."""
EVAL_RESULTS_FILE = ".eval_results/hfssl.yaml"


class RecordSchema(Protocol):
    """What the push needs from the owner of the evaluation-record schema (e.g. ``eval_suite.results``)."""

    def load_records(self, *paths: str | os.PathLike) -> tuple[list[dict[str, Any]], list[Any]]:
        """The valid records in ``paths`` and the problems found."""
        ...

    def to_eval_results(self, records: Sequence[Mapping[str, Any]]) -> Any:
        """``huggingface_hub.EvalResult`` s of the records (one per setting and metric)."""
        ...


@dataclass
class PushResult:
    """What a push did.

    Attributes:
        repo_id / revision: where it went.
        commit_oid: the commit now at the head of ``revision`` (the existing one if nothing changed).
        commit_url: link to that commit.
        created_commit: False when the remote already held exactly these files.
        uploaded: files that were new or changed (in the commit).
        unchanged: files whose remote copy was already identical (not re-sent).
        records_used: evaluation records of this checkpoint that went into the card.
        records_skipped: records in the results folder that belong to other checkpoints (or are scratch runs).
    """

    repo_id: str
    revision: str
    commit_oid: str
    commit_url: str
    created_commit: bool
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    records_used: int = 0
    records_skipped: int = 0

    def summary(self) -> str:
        where = f"{self.repo_id}@{self.revision}"
        if not self.created_commit:
            text = f"{where} is up to date ({len(self.unchanged)} files unchanged); no commit made, head {self.commit_oid[:12]}"
        else:
            text = f"pushed {len(self.uploaded)} file(s) to {where} in commit {self.commit_oid[:12]}: {', '.join(self.uploaded)}"
            if self.unchanged:
                text += f" ({len(self.unchanged)} unchanged: {', '.join(self.unchanged)})"
        text += f"; {self.records_used} evaluation record(s) in the card"
        if self.records_skipped:
            text += f", {self.records_skipped} record(s) of other checkpoints left out"
        return text


def push_checkpoint(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    results_dir: str | os.PathLike | None = None,
    eval_results: Sequence[Any] | None = None,
    record_schema: RecordSchema | None = None,
    dataset_ids: Mapping[str, str] | None = None,
    license: str = cards.DEFAULT_LICENSE,
    template: str | os.PathLike | None = None,
    token: str | None = None,
    extra_files: Mapping[str, str | os.PathLike] | None = None,
    card_appendix: str | None = None,
) -> PushResult:
    """Push ``checkpoint_dir`` to ``repo_id`` as one commit (see the module docstring).

    Args:
        checkpoint_dir: hfssl ``save_pretrained`` folder (e.g. ``OUTPUT_DIR/backbone``) or an
            ``hfssl export-timm`` folder.
        repo_id: ``ORG/NAME``; created if missing (``private`` applies only then).
        revision: branch to commit to (created from ``main`` if missing); default ``main``.
        commit_message: default ``"Upload <backbone> (<methods>) with hfssl"``.
        results_dir: folder of evaluation records (``*.json``); default ``checkpoint_dir/eval_results``.
        eval_results: ready-made ``huggingface_hub.EvalResult`` s to put in the card (added to the records').
        record_schema: reads and summarises the evaluation records (``eval_suite.results``); needed
            only when ``results_dir`` holds records of this checkpoint.
        dataset_ids: dataset name -> Hub benchmark dataset id, for ``.eval_results/hfssl.yaml``.
        license: licence of the weights on the card.
        template: model card template (default ``model_cards/backbone.md.j2``).
        token: Hub token (default: the logged-in one / ``HF_TOKEN``).
        extra_files: more files for the same commit, path in repo -> local file (e.g. a zoo entry's
            ``pretext_model/model.safetensors``); safetensors, JSON, YAML and text only, never pickle.
        card_appendix: markdown appended to the rendered card (e.g. the zoo's build facts).
    """
    repo_id = check_repo_id(repo_id)
    branch = revision or "main"
    plan = prepare_card(
        checkpoint_dir,
        repo_id,
        results_dir=results_dir,
        eval_results=eval_results,
        record_schema=record_schema,
        dataset_ids=dataset_ids,
        license=license,
        template=template,
        card_appendix=card_appendix,
    )
    facts, records, record_files, skipped, entries = (
        plan.facts,
        plan.records,
        plan.record_files,
        plan.skipped,
        plan.entries,
    )

    # everything the commit would hold: path in repo -> local path or bytes
    payload: dict[str, Path | bytes] = {
        "config.json": facts.folder / "config.json",
        "model.safetensors": facts.folder / "model.safetensors",
        "README.md": plan.card_text.encode("utf-8"),
    }
    for record_path in record_files:
        payload[f"{RESULTS_FOLDER}/{record_path.name}"] = record_path
    if entries:
        payload[EVAL_RESULTS_FILE] = cards.eval_results_yaml(entries).encode("utf-8")
    for path_in_repo, local in (extra_files or {}).items():
        payload[_check_extra_file(path_in_repo, Path(local), set(payload))] = Path(local)

    message = commit_message or _default_message(facts)
    return _commit(
        payload,
        repo_id,
        branch,
        private=private,
        token=token,
        message=message,
        records=(len(records), skipped),
    )


def push_adapter(
    adapter_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    license: str = cards.DEFAULT_LICENSE,
    token: str | None = None,
) -> PushResult:
    """Push a LoRA adapter saved by ``hfssl evaluate --protocol lora --save-adapter DIR`` as one
    commit: peft's ``adapter_config.json`` + ``adapter_model.safetensors``, ``hfssl_adapter.json``
    and a model card rendered from ``model_cards/adapter.md.j2`` (idempotent like
    :func:`push_checkpoint`)."""
    from hfssl.hub.lora import read_adapter_meta, render_adapter_card

    repo_id = check_repo_id(repo_id)
    folder = Path(adapter_dir)
    meta = read_adapter_meta(folder)  # refuses a folder that is no adapter
    payload: dict[str, Path | bytes] = {
        name: folder / name
        for name in ("adapter_config.json", "adapter_model.safetensors", "hfssl_adapter.json")
    }
    payload["README.md"] = render_adapter_card(folder, repo_id, license=license).encode("utf-8")
    message = commit_message or f"Upload LoRA adapter for {meta.get('base_model')} with hfssl"
    return _commit(payload, repo_id, revision or "main", private=private, token=token, message=message)


def _commit(
    payload: Mapping[str, Path | bytes],
    repo_id: str,
    branch: str,
    *,
    private: bool,
    token: str | None,
    message: str,
    records: tuple[int, int] = (0, 0),
) -> PushResult:
    """Upload the files of ``payload`` that differ from the remote ones in one commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    where = f"cannot push to {repo_id}"
    with hub_errors(where, upload=True):
        with_retries(api.create_repo, repo_id, private=private, exist_ok=True)
        if branch != "main":
            with_retries(api.create_branch, repo_id, branch=branch, exist_ok=True)
        head = with_retries(api.repo_info, repo_id, revision=branch)
        remote = {
            f.path: f
            for f in with_retries(
                lambda: list(api.list_repo_tree(repo_id, revision=head.sha, recursive=True))
            )
            if hasattr(f, "blob_id")
        }
    changed, unchanged = [], []
    for path_in_repo, content in payload.items():
        (unchanged if _same_as_remote(content, remote.get(path_in_repo)) else changed).append(path_in_repo)
    url_prefix = f"{api.endpoint}/{repo_id}/commit/"
    if not changed:
        logger.info("%s@%s already holds these files; no commit made", repo_id, branch)
        return PushResult(
            repo_id,
            branch,
            str(head.sha),
            url_prefix + str(head.sha),
            False,
            [],
            unchanged,
            *records,
        )
    operations = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(c) if isinstance(c, Path) else c)
        for p, c in payload.items()
        if p in changed
    ]
    with hub_errors(where, upload=True):
        info = with_retries(
            api.create_commit,
            repo_id,
            operations=operations,
            commit_message=message,
            revision=branch,
            parent_commit=head.sha,  # fail rather than overwrite a commit made since we compared
        )
    logger.info("pushed %s to %s@%s (%s)", ", ".join(changed), repo_id, branch, info.oid)
    return PushResult(repo_id, branch, info.oid, info.commit_url, True, changed, unchanged, *records)


@dataclass
class CardPlan:
    """The card of a checkpoint and the records behind it (what a push would upload)."""

    facts: cards.CheckpointFacts
    card_text: str
    records: list[dict[str, Any]]
    record_files: list[Path]
    skipped: int
    entries: list[Any]


def prepare_card(
    checkpoint_dir: str | os.PathLike,
    repo_id: str,
    *,
    results_dir: str | os.PathLike | None = None,
    eval_results: Sequence[Any] | None = None,
    record_schema: RecordSchema | None = None,
    dataset_ids: Mapping[str, str] | None = None,
    license: str = cards.DEFAULT_LICENSE,
    template: str | os.PathLike | None = None,
    card_appendix: str | None = None,
) -> CardPlan:
    """Render the card ``push_checkpoint`` would upload (same arguments); nothing is sent or written."""
    facts = cards.read_checkpoint(checkpoint_dir)
    weights = facts.folder / "model.safetensors"
    records, record_files, skipped = _records_for(facts, weights, results_dir, record_schema)
    results = list(eval_results or [])
    if records:
        assert record_schema is not None
        results = _records_to_eval_results(records, repo_id, record_schema) + results
    entries = cards.eval_result_entries(results, dataset_ids or {})
    card = cards.render_card(
        facts,
        repo_id=repo_id,
        eval_results=results,
        license=license,
        template=template,
        has_eval_result_files=bool(entries),
        records_in_repo=bool(record_files),
    )
    text = str(card)
    if card_appendix:
        text = text.rstrip("\n") + "\n\n" + card_appendix.strip("\n") + "\n"
    return CardPlan(facts, text, records, record_files, skipped, list(entries))


_EXTRA_SUFFIXES = (".safetensors", ".json", ".yaml", ".yml", ".md", ".txt")


def _check_extra_file(path_in_repo: str, local: Path, taken: set[str]) -> str:
    from hfssl.hub.remote import is_pickle

    parts = Path(path_in_repo).parts
    if not parts or path_in_repo.startswith("/") or ".." in parts or path_in_repo in taken:
        raise ConfigError(
            f"extra file path {path_in_repo!r} is not a new relative path inside the repo",
            "use a relative path such as pretext_model/model.safetensors",
        )
    if is_pickle(local.name) or not local.name.endswith(_EXTRA_SUFFIXES):
        raise ConfigError(
            f"extra file {local} is not safetensors/JSON/YAML/text", "push only safetensors weights and text"
        )
    if not local.is_file():
        raise DataError(f"extra file {local} does not exist", "build the folder again")
    return path_in_repo


# ---------------------------------------------------------------------------------------- helpers
def _same_as_remote(content: Path | bytes, remote: Any) -> bool:
    """Whether the remote file (a ``RepoFile``) has exactly this content (git SHA-1, or SHA-256 for LFS)."""
    if remote is None:
        return False
    from huggingface_hub.utils.sha import git_hash

    data = content.read_bytes() if isinstance(content, Path) else content
    if remote.lfs is not None:
        return remote.lfs.sha256 == hashlib.sha256(data).hexdigest()
    return remote.blob_id == git_hash(data)


def _default_message(facts: cards.CheckpointFacts) -> str:
    methods = " + ".join(facts.methods) or "unrecorded method"
    return f"Upload {cards._backbone(facts)} ({methods}) with hfssl"


def _records_for(
    facts: cards.CheckpointFacts,
    weights: Path,
    results_dir: str | os.PathLike | None,
    schema: RecordSchema | None,
) -> tuple[list[dict[str, Any]], list[Path], int]:
    """(records of this checkpoint, their files, number of other records) from the results folder."""
    folder = Path(results_dir).expanduser() if results_dir is not None else facts.folder / RESULTS_FOLDER
    if results_dir is not None and not folder.is_dir():
        raise DataError(
            f"results folder {folder} does not exist", "give the --results-dir used with hfssl evaluate"
        )
    if not folder.is_dir():
        return [], [], 0
    from hfssl.utils.io import file_sha256

    digest = file_sha256(weights)
    mine: list[tuple[Path, dict[str, Any]]] = []
    skipped = 0
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(
                f"evaluation record {path} is not valid JSON ({err})", "delete or re-run it"
            ) from err
        checkpoint = record.get("checkpoint") if isinstance(record, dict) else None
        if not isinstance(checkpoint, dict):
            raise DataError(
                f"{path} is not an evaluation record (no 'checkpoint')", "keep only records in this folder"
            )
        if checkpoint.get("content_hash") == digest and not checkpoint.get("random_init"):
            mine.append((path, record))
        else:
            skipped += 1
    if not mine:
        return [], [], skipped
    if schema is None:
        raise ConfigError(
            f"{folder} holds {len(mine)} evaluation record(s) of this checkpoint, but no record schema was given",
            "pass record_schema=eval_suite.results (hfssl push does), or results_dir pointing to an empty folder",
        )
    # validate with the results layer's own reader (schema checks), on exactly these files
    records = _load_records([p for p, _ in mine], schema)
    return records, [p for p, _ in mine], skipped


def _load_records(paths: Sequence[Path], schema: RecordSchema) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in paths:
        loaded, problems = schema.load_records(path)
        if problems:
            raise DataError(
                f"evaluation record {path} is invalid: {'; '.join(map(str, problems))[:300]}",
                "delete or re-run it",
            )
        records.extend(loaded)
    return records


def _records_to_eval_results(
    records: Sequence[Mapping[str, Any]], repo_id: str, schema: RecordSchema
) -> list[Any]:
    """Card results of this checkpoint's records (mean over seeds per setting, by the results layer)."""
    import copy

    # The same weights may have been evaluated as a folder and as a repo id: on the card they are
    # this repo, so the records are relabelled (copies; the uploaded files stay as written).
    relabelled = []
    for record in records:
        record = copy.deepcopy(dict(record))
        record["checkpoint"] = {**record["checkpoint"], "spec": repo_id, "name": repo_id.split("/")[-1]}
        relabelled.append(record)
    return list(schema.to_eval_results(relabelled))
