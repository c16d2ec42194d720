"""The zoo store: built entries on this machine, and ``zoo:NAME`` resolution.

Layout (``$HFSSL_ZOO_STORE``, else ``~/.cache/hfssl/zoo``; one folder per budget)::

    STORE/<budget>/<name>/            a finished entry, laid out as its Hub repo:
        config.json, model.safetensors    the backbone (HfsslModel): what evaluators load
        pretext_model/                    backbone + heads, to continue pretraining (--init-from)
        eval_results/*.json               its evaluation records
        README.md                         the model card with the results
        zoo_entry.json                    manifest entry, budget, wall times, hardware, summary
    STORE/<budget>/.work/<name>/      a build in progress (pretraining checkpoints, finished cells)
    STORE/<budget>/.locks/<name>.lock the builder that holds the entry (pid@host)

An entry folder appears only by ``os.replace`` of a complete temporary folder, so a killed or
failed build never leaves a half-written entry; the work folder lets the next build resume.
Builders of different entries share the store safely; two builders of the same entry do not
both run it (the lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hfssl.errors import CheckpointError, ConfigError

ENTRY_FILE = "zoo_entry.json"
PUSHED_FILE = ".pushed.json"
PRETEXT_FOLDER = "pretext_model"
RESULTS_FOLDER = "eval_results"


def default_store_root() -> Path:
    env = os.environ.get("HFSSL_ZOO_STORE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hfssl" / "zoo"


class ZooStore:
    """Built zoo entries under one root (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_store_root()

    def entry_dir(self, name: str, budget: str) -> Path:
        return self.root / budget / name

    def work_dir(self, name: str, budget: str) -> Path:
        return self.root / budget / ".work" / name

    def lock_path(self, name: str, budget: str) -> Path:
        return self.root / budget / ".locks" / f"{name}.lock"

    def is_built(self, name: str, budget: str) -> bool:
        d = self.entry_dir(name, budget)
        return all((d / f).is_file() for f in (ENTRY_FILE, "config.json", "model.safetensors"))

    def info(self, name: str, budget: str) -> dict[str, Any] | None:
        path = self.entry_dir(name, budget) / ENTRY_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def pushed(self, name: str, budget: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.entry_dir(name, budget) / PUSHED_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def weights_sha256(self, name: str, budget: str) -> str | None:
        """The sha256 of a built entry's backbone weights (None: not built)."""
        from hfssl.utils.io import file_sha256

        try:
            return file_sha256(self.entry_dir(name, budget) / "model.safetensors")
        except OSError:
            return None

    def is_stale(self, entry: Any, budget: str) -> bool:
        """Whether the built ``entry`` (a manifest ``ZooEntry``) was built with other settings than
        the manifest's now (``ZooEntry.build_settings``: e.g. its budget's steps were changed), or
        from another build of an entry it requires (a distillation teacher rebuilt since)."""
        info = self.info(entry.name, budget)
        stored = info.get("entry") if info else None
        if isinstance(stored, dict) and entry.settings_differ(stored, budget):
            return True
        return bool(info) and bool(self.changed_requirements(entry, budget, info))

    def changed_requirements(self, entry: Any, budget: str, info: dict[str, Any]) -> list[str]:
        """The entries ``entry`` requires whose weights in this store are no longer those it was
        built from (``ZooEntry.changed_requirements``, the stored files hashed)."""
        return entry.changed_requirements(info, lambda req: self.weights_sha256(req, budget))

    def status(self, name: str, budget: str, entry: Any = None) -> str:
        """``pushed`` / ``built`` / ``stale`` (built with other settings than ``entry``'s, when
        given) / ``building`` / ``partial`` (a resumable build) / ``missing``."""
        if self.is_built(name, budget):
            if entry is not None and self.is_stale(entry, budget):
                return "stale"
            return "pushed" if self.pushed(name, budget) else "built"
        if _lock_owner_alive(self.lock_path(name, budget)):
            return "building"
        if self.work_dir(name, budget).is_dir():
            return "partial"
        return "missing"

    @contextlib.contextmanager
    def lock(self, name: str, budget: str) -> Iterator[bool]:
        """Hold the entry's build lock; yields False (and holds nothing) when a live builder has it."""
        path = self.lock_path(name, budget)
        path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()}@{socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if _lock_owner_alive(path):
                    yield False
                    return
                with contextlib.suppress(FileNotFoundError):  # a dead builder's lock: take it over
                    path.unlink()
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            try:
                yield True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    if path.read_text().strip() == me:
                        path.unlink()
            return
        yield False


def _lock_owner_alive(path: Path) -> bool:
    try:
        owner = path.read_text().strip()
    except OSError:
        return False
    pid_text, _, host = owner.partition("@")
    if host and host != socket.gethostname():
        return True  # another machine's builder on a shared store: trust its lock
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return not _is_zombie(int(pid_text))


def _is_zombie(pid: int) -> bool:
    """A killed builder that nobody reaped (its parent gone, as under ``nohup ... &`` in a container
    whose init does not reap) still answers ``kill(pid, 0)``; Linux's ``/proc`` says it is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


# --------------------------------------------------------------------------- zoo:NAME specs
def parse_zoo_spec(spec: str) -> tuple[str, str | None]:
    """``zoo:NAME`` or ``zoo:NAME@BUDGET`` -> (name, budget or None)."""
    text = spec[len("zoo:") :] if spec.startswith("zoo:") else spec
    name, at, budget = text.partition("@")
    if not name:
        raise ConfigError(
            f"zoo spec {spec!r} names no entry", "write zoo:NAME, e.g. zoo:simclr-resnet18-breastmnist28"
        )
    if at:
        from hfssl.zoo.manifest import BUDGETS

        if budget not in BUDGETS:
            raise ConfigError(
                f"zoo spec {spec!r} names budget {budget!r}", f"use one of: {', '.join(BUDGETS)}"
            )
    return name, budget or None


def resolve_zoo_spec(
    spec: str, *, store: ZooStore | None = None, manifest: Any = None, org: str | None = None
) -> Path:
    """The local folder of ``zoo:NAME[@BUDGET]``: a built entry in the store (``paper`` before
    ``cpu`` unless a budget is named), else the pulled copy in the Hugging Face cache. Nothing is
    downloaded here (``hfssl zoo pull NAME`` does that), so this works offline."""
    from hfssl.hub.remote import cached_snapshot
    from hfssl.zoo.manifest import load_manifest

    name, budget = parse_zoo_spec(spec)
    manifest = manifest or load_manifest()
    entry = manifest.get(name)  # unknown names: one line with the near matches
    store = store or ZooStore()
    for b in [budget] if budget else ["paper", "cpu"]:
        if store.is_built(name, b):
            return store.entry_dir(name, b)
    repo_id = entry.repo_id(org or manifest.default_org())
    snapshot = cached_snapshot(repo_id, None)
    if snapshot is not None and (snapshot / "config.json").is_file():
        return snapshot
    raise CheckpointError(
        f"zoo entry {name} is neither built in {store.root} nor pulled into the Hugging Face cache ({repo_id})",
        f"run 'hfssl zoo pull {name}' (online) or 'hfssl zoo build {name}'",
    )
