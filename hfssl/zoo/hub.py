"""Zoo entries on the Hub: push a built entry (one commit), pull one into the Hugging Face cache.

A zoo repo is laid out as the store's entry folder: the backbone at the root (so
``load_feature_extractor("ORG/NAME")`` and ``AutoModel`` load it directly), ``pretext_model/``
(heads included, for ``--init-from``), ``eval_results/`` (+ ``eval_results/baselines/``), the card
and ``zoo_entry.json``. Pushing goes through :func:`hfssl.hub.push.push_checkpoint`, so it is one
commit and an unchanged entry makes none. Pulling uses ``huggingface_hub``'s cache, so
``HF_HUB_OFFLINE=1`` works afterwards; ``zoo:NAME`` finds the pulled copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hfssl.errors import CheckpointError
from hfssl.zoo.manifest import ZooEntry
from hfssl.zoo.store import ENTRY_FILE, PRETEXT_FOLDER, PUSHED_FILE, RESULTS_FOLDER, ZooStore

PULL_PATTERNS = (
    "config.json",
    "model.safetensors",
    "README.md",
    ENTRY_FILE,
    f"{PRETEXT_FOLDER}/config.json",
    f"{PRETEXT_FOLDER}/model.safetensors",
    f"{RESULTS_FOLDER}/*.json",
    f"{RESULTS_FOLDER}/baselines/*.json",
)


def push_entry(
    entry: ZooEntry,
    *,
    org: str,
    store: ZooStore | None = None,
    budget: str = "cpu",
    private: bool = False,
    record_schema: Any = None,
    token: str | None = None,
) -> Any:
    """Push the built entry to ``ORG/NAME`` as one commit; returns the :class:`PushResult`."""
    from hfssl.hub.push import push_checkpoint
    from hfssl.utils.io import write_json_atomic

    store = store or ZooStore()
    if not store.is_built(entry.name, budget):
        raise CheckpointError(
            f"zoo entry {entry.name} is not built at the {budget} budget in {store.root}",
            f"run 'hfssl zoo build {entry.name} --budget {budget}' first",
        )
    folder = store.entry_dir(entry.name, budget)
    info = json.loads((folder / ENTRY_FILE).read_text(encoding="utf-8"))
    extra = {
        f"{PRETEXT_FOLDER}/{f}": folder / PRETEXT_FOLDER / f for f in ("config.json", "model.safetensors")
    }
    extra[ENTRY_FILE] = folder / ENTRY_FILE
    for path in sorted((folder / RESULTS_FOLDER / "baselines").glob("*.json")):
        extra[f"{RESULTS_FOLDER}/baselines/{path.name}"] = path
    from hfssl.zoo.card import card_appendix

    repo_id = entry.repo_id(org)
    result = push_checkpoint(
        folder,
        repo_id,
        private=private,
        commit_message=f"hfssl zoo: {entry.name} ({budget} budget)",
        results_dir=folder / RESULTS_FOLDER,
        record_schema=record_schema,
        extra_files=extra,
        card_appendix=card_appendix(info),
        token=token,
    )
    write_json_atomic(
        folder / PUSHED_FILE,
        {"repo_id": result.repo_id, "revision": result.revision, "commit": result.commit_oid},
    )
    return result


def pull_entry(entry: ZooEntry, *, org: str, revision: str | None = None) -> Path:
    """Download ``ORG/NAME`` (safetensors, JSON and the card only) into the Hugging Face cache."""
    from hfssl.hub.remote import safe_snapshot

    folder = safe_snapshot(
        entry.repo_id(org), revision=revision, weights=("*.safetensors",), extra=PULL_PATTERNS
    )
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{entry.repo_id(org)} is not a zoo entry (no config.json at its root)",
            "push it with 'hfssl zoo push' or give the right --org",
        )
    return folder
