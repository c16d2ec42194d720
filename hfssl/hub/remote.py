"""Talking to the Hub: repo-id checks, safe (safetensors-only) downloads, one-line errors.

Everything goes through ``huggingface_hub`` with its defaults, so ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_TOKEN`` behave as everywhere in the ecosystem.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hfssl.errors import CheckpointError, ConfigError, HubError

T = TypeVar("T")

# a Hub model id: exactly ORG/NAME (local paths are tried first by callers)
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".pth.tar")


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid ``ORG/NAME`` Hub id, else a :class:`ConfigError` saying why."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    text = str(repo_id).strip()
    if text.count("/") != 1:
        raise ConfigError(
            f"malformed repo id {repo_id!r}: it must be ORG/NAME (one '/')", "write it as your-org/model-name"
        )
    try:
        validate_repo_id(text)
    except HFValidationError as err:
        raise ConfigError(f"malformed repo id {repo_id!r}: {err}", "write it as your-org/model-name") from err
    return text


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@contextlib.contextmanager
def hub_errors(what: str, upload: bool = False) -> Iterator[None]:
    """Turn ``huggingface_hub`` / network exceptions raised while doing ``what`` into one-line hfssl errors.

    ``upload``: the request sends files (a push), so a cache cannot stand in for the network and the
    messages say so rather than speaking of downloads.
    """
    from huggingface_hub import errors
    from huggingface_hub.utils import httpx

    try:
        yield
    except errors.HFValidationError as err:
        raise ConfigError(f"{what}: {err}", "write the repo id as your-org/model-name") from err
    except errors.OfflineModeIsEnabled as err:
        if upload:
            raise HubError(
                f"{what}: offline mode is on (HF_HUB_OFFLINE=1) and an upload needs the Hub",
                "unset HF_HUB_OFFLINE (and log in with 'hf auth login' or set HF_TOKEN), then push again",
            ) from err
        raise HubError(
            f"{what}: offline mode is on (HF_HUB_OFFLINE=1) and the files are not in the cache",
            "download it once online, or unset HF_HUB_OFFLINE",
        ) from err
    except (errors.RepositoryNotFoundError, errors.GatedRepoError) as err:
        raise CheckpointError(
            f"{what}: repository not found on {endpoint()} (or it is private/gated and no token was given)",
            "check the repo id, or log in with 'hf auth login' / set HF_TOKEN",
        ) from err
    except errors.RevisionNotFoundError as err:
        raise CheckpointError(
            f"{what}: revision not found", "give an existing branch, tag or commit hash"
        ) from err
    except errors.LocalEntryNotFoundError as err:
        if upload:
            raise HubError(
                f"{what}: the Hub at {endpoint()} cannot be reached",
                "check the network / HF_ENDPOINT, then push again (an unchanged folder makes no new commit)",
            ) from err
        raise HubError(
            f"{what}: the Hub at {endpoint()} cannot be reached and the files are not in the cache",
            "check the network / HF_ENDPOINT, then retry",
        ) from err
    except errors.HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        hint = "log in with 'hf auth login' or set HF_TOKEN" if status in (401, 403) else "retry later"
        raise HubError(
            f"{what}: the Hub answered HTTP {status} ({' '.join(str(err).split())[:200]})", hint
        ) from err
    except (httpx.TransportError, ConnectionError, TimeoutError) as err:
        raise HubError(
            f"{what}: cannot reach the Hub at {endpoint()} ({type(err).__name__})",
            "check the network or HF_ENDPOINT; with HF_HUB_OFFLINE=1 cached checkpoints load without it",
        ) from err


RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_ATTEMPTS = 5


def with_retries(call: Callable[..., T], *args: Any, attempts: int = RETRY_ATTEMPTS, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, retried with exponential backoff (1, 2, 4, 8 s; the server's
    ``Retry-After`` when it gives one) while the Hub answers 429/5xx or the connection drops.

    ``HfApi`` methods take no retry policy (``huggingface_hub``'s ``http_backoff`` wraps one raw request),
    so a push or a file listing goes through here. After ``attempts`` tries the last error propagates
    (under :func:`hub_errors` it becomes one line). A commit is safe to retry: pushes pass
    ``parent_commit``, so a commit that did land is never applied twice.
    """
    import time

    from huggingface_hub import errors
    from huggingface_hub.utils import httpx

    for attempt in range(1, attempts + 1):
        try:
            return call(*args, **kwargs)
        except (errors.HfHubHTTPError, httpx.TransportError) as err:
            response = getattr(err, "response", None)
            status = response.status_code if response is not None else None
            transient = isinstance(err, httpx.TransportError) or status in RETRY_STATUSES
            if not transient or attempt == attempts:
                raise
            wait = 2.0 ** (attempt - 1)
            retry_after = response.headers.get("Retry-After") if response is not None else None
            if retry_after is not None and retry_after.strip().isdigit():
                wait = float(retry_after)
            time.sleep(min(wait, 30.0))
    raise AssertionError("unreachable")  # pragma: no cover


def is_pickle(path: str) -> bool:
    return path.lower().endswith(PICKLE_SUFFIXES)


def repo_files(repo_id: str, revision: str | None = None) -> tuple[list[str], str | None]:
    """(file names, commit sha) of a Hub model repo; offline, what the cache holds for that revision."""
    from huggingface_hub import HfApi, constants

    if constants.is_offline_mode():
        cached = cached_snapshot(repo_id, revision)
        if cached is None:
            raise HubError(
                f"{repo_id}: offline mode is on (HF_HUB_OFFLINE=1) and it is not in the cache",
                "download it once online, or unset HF_HUB_OFFLINE",
            )
        return sorted(str(p.relative_to(cached)) for p in cached.rglob("*") if p.is_file()), cached.name
    with hub_errors(f"cannot read {repo_id}" + (f"@{revision}" if revision else "")):
        info = with_retries(HfApi().model_info, repo_id, revision=revision)
    files = sorted(s.rfilename for s in info.siblings or [])
    check_repo_paths(repo_id, files)
    return files, info.sha


def check_repo_paths(repo_id: str, files: Sequence[str]) -> None:
    """Refuse a repo whose file list names a path that would land outside its snapshot folder
    (``..`` segments, absolute paths, drive letters, backslashes, NUL)."""
    for name in files:
        parts = name.replace("\\", "/").split("/")
        if (
            not name
            or name.startswith(("/", "\\"))
            or "\\" in name
            or "\0" in name
            or ".." in parts
            or (len(name) > 1 and name[1] == ":")
        ):
            raise HubError(
                f"{repo_id} lists an unsafe file path {name!r} that would be written outside its download folder",
                "refusing to download it; use a repo from a source you trust, or report it to the Hub",
            )


def cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (branch, tag or commit), if any."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    revision = revision or "main"
    ref = storage / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    folder = storage / "snapshots" / commit
    return folder if folder.is_dir() else None


def safe_snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    weights: Sequence[str] = ("*.safetensors",),
    extra: Sequence[str] = ("config.json", "README.md", "preprocessor_config.json"),
) -> Path:
    """Download (or find in the cache) ``repo_id``'s config and safetensors weights; never a pickle.

    The repo's file list is checked first: one that offers weights only as pickle
    (``pytorch_model.bin`` ...) is refused with a :class:`CheckpointError` before anything is
    downloaded. Returns the snapshot folder in the Hugging Face cache.
    """
    import fnmatch

    from huggingface_hub import snapshot_download

    files, _ = repo_files(repo_id, revision)
    has_safe = any(fnmatch.fnmatch(f, pattern) for f in files for pattern in weights)
    if not has_safe:
        pickles = [f for f in files if is_pickle(f)]
        if pickles:
            raise CheckpointError(
                f"{repo_id} offers its weights only as pickle ({', '.join(pickles[:3])}), which can run code when loaded",
                "hfssl loads safetensors only: ask the owner for model.safetensors, or convert it yourself from a trusted copy",
            )
        raise CheckpointError(
            f"{repo_id} has no safetensors weights (files: {', '.join(files[:8]) or 'none'})",
            "push a checkpoint folder with model.safetensors (hfssl push)",
        )
    with hub_errors(f"cannot download {repo_id}"):
        # the branch name (not the sha) so the cache records refs/<branch> for later offline loads
        folder = with_retries(
            snapshot_download, repo_id, revision=revision, allow_patterns=[*extra, *weights]
        )
    return Path(folder)
