"""A loopback, in-memory, Hugging Face Hub-compatible HTTP server for tests.

It implements the endpoints ``huggingface_hub`` 2.4 (and, through it, transformers and timm) uses
to create a repo, commit files, read repo/revision info and download files - enough for
``create_repo``, ``create_commit``/``upload_folder``, ``model_info``/``repo_info``,
``list_repo_tree``/``list_repo_files``, ``list_repo_commits``, ``hf_hub_download``,
``snapshot_download`` and ``from_pretrained("ORG/NAME")``:

=========================================================  =====================================
``POST /api/repos/create``                                 create (409 if it exists)
``POST /api/validate-yaml``                                README metadata check (YAML parse)
``POST /api/{type}s/{id}/preupload/{rev}``                 always answers ``uploadMode: regular``
``POST /api/{type}s/{id}/commit/{rev}``                    NDJSON commit (``file``, ``deletedFile``,
                                                           ``deletedFolder``; ``parentCommit``)
``GET  /api/{type}s/{id}[/revision/{rev}]``                info with ``sha``, ``siblings``, ``cardData``
``GET  /api/{type}s/{id}/tree/{rev}[/{path}]``             file listing (``recursive``)
``GET  /api/{type}s/{id}/commits/{rev}``                   commit history, newest first
``POST /api/{type}s/{id}/branch/{name}``                   create a branch (``startingPoint``)
``GET  /api/{type}s/{id}/refs``                            branches
``HEAD|GET /[{type}s/]{id}/resolve/{rev}/{path}``          file with ``X-Repo-Commit``, ``ETag``,
                                                           ``Content-Length``, ``Range`` support
=========================================================  =====================================

Every file travels inside the commit ("regular" upload mode), so there is no LFS/Xet storage to
fake; ETags are git blob SHA-1s as the Hub gives for regular files. Errors carry the
``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) from which
the client raises its typed errors.

Use it as a context manager; :meth:`LoopbackHub.patch_client` (or the ``hub`` pytest fixture in
``conftest.py``) points ``huggingface_hub`` - and so transformers and timm - at it::

    with LoopbackHub() as hub, hub.patch_client(cache_dir=tmp_path / "hf-cache"):
        HfApi().create_repo("org/name")   # goes to hub.endpoint

The server binds 127.0.0.1 only and keeps everything in memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from huggingface_hub.utils.sha import git_hash

REPO_TYPES = ("model", "dataset", "space")
_API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(/.*)?$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Commit:
    """One commit: a full snapshot of the repo's files (path -> bytes)."""

    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, bytes]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """A branch name or a full commit oid -> the commit, else ``None``."""
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)

    def history(self, oid: str) -> list[Commit]:
        out: list[Commit] = []
        commit: Commit | None = self.commits.get(oid)
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return out


class HubState:
    """In-memory repos; all access goes through one lock (the server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) - lets tests assert traffic
        self.faults: list[int] = []  # HTTP statuses (429/500/503) answered, one each, before serving again
        # stall switch: while ``stall_commits`` is set, a commit reads half its upload, sets
        # ``commit_stalled`` and waits for ``release_commits``; then it reads the rest, or with
        # ``stall_loses_rest`` acts as if the rest never came (client killed mid-upload) and
        # refuses the commit whole, as the Hub does
        self.stall_commits = False
        self.stall_loses_rest = False
        self.commit_stalled = threading.Event()
        self.release_commits = threading.Event()
        self._counter = 0

    def new_commit(
        self, repo: Repo, parent: str | None, title: str, message: str, files: dict[str, bytes]
    ) -> Commit:
        self._counter += 1
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"{repo.repo_id}\0{parent}\0{title}\0{self._counter}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_hash(files[path])}\0".encode())
        commit = Commit(digest.hexdigest(), parent, title, message, _now(), dict(files))
        repo.commits[commit.oid] = commit
        return commit

    def create(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private, _now())
        # like the Hub: a new repo starts with one commit holding .gitattributes
        first = self.new_commit(
            repo, None, "initial commit", "", {".gitattributes": b"*.safetensors filter=lfs\n"}
        )
        repo.branches["main"] = first.oid
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def put_files(
        self, repo_id: str, files: dict[str, bytes], *, repo_type: str = "model", title: str = "upload"
    ) -> str:
        """Test helper: create the repo if needed and commit ``files`` to main (e.g. a pickle-only repo)."""
        with self.lock:
            repo = self.repos.get((repo_type, repo_id)) or self.create(repo_type, repo_id, private=False)
            head = repo.commits[repo.branches["main"]]
            commit = self.new_commit(repo, head.oid, title, "", {**head.files, **files})
            repo.branches["main"] = commit.oid
            return commit.oid


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer sets Content-Length
    server: _Server

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        return

    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _commit_body(self) -> bytes:
        """The commit upload; with the stall switch on, half of it, a wait, then the rest."""
        if not self.state.stall_commits:
            return self._body()
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length // 2)
        self.state.commit_stalled.set()
        self.state.release_commits.wait(timeout=120)
        if not self.state.stall_loses_rest:
            with contextlib.suppress(OSError):
                data += self.rfile.read(length - len(data))
        if len(data) < length:  # the client went away mid-upload: nothing is committed
            raise _HttpError(400, f"incomplete upload ({len(data)} of {length} bytes)")
        return data

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        head: bool = False,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _error(
        self, status: int, message: str, code: str | None = None, extra: dict[str, str] | None = None
    ) -> None:
        headers = {"X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(
            status, json.dumps({"error": message}).encode(), headers=headers, head=self.command == "HEAD"
        )

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        with self.state.lock:
            self.state.requests.append((self.command, path))
            fault = self.state.faults.pop(0) if self.state.faults else None
        if fault is not None:  # injected failure: a busy or broken Hub
            self._body()
            return self._error(fault, "injected failure", extra={"Retry-After": "0"})
        try:
            self._route(path, query)
        except _HttpError as err:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client already gone
                self._error(err.status, err.message, err.code)

    do_GET = do_POST = do_HEAD = do_DELETE = _dispatch  # noqa: N815 - http.server's naming

    # ------------------------------------------------------------------ routing
    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        method = self.command
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo()
        if path == "/api/validate-yaml" and method == "POST":
            return self._validate_yaml()
        if match := _API_REPO.match(path):
            kind, repo_id, rest = match.group(1), match.group(2), match.group(3) or ""
            return self._api_repo(kind[:-1], repo_id, rest, query)
        if (match := _RESOLVE.match(path)) and method in ("GET", "HEAD"):
            kind = (match.group(1) or "models")[:-1]
            return self._resolve(kind, match.group(2), match.group(3), match.group(4))
        raise _HttpError(404, f"no route for {method} {path}")

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            raise _HttpError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ------------------------------------------------------------------ endpoints
    def _create_repo(self) -> None:
        payload = json.loads(self._body() or b"{}")
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        if not org or not name or not _REPO_NAME.match(str(name)) or repo_type not in REPO_TYPES:
            raise _HttpError(400, f"invalid repo name {org}/{name} or type {repo_type}")
        repo_id = f"{org}/{name}"
        url = f"{self.endpoint}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self.state.lock:
            if (repo_type, repo_id) in self.state.repos:
                return self._json({"error": "You already created this repo", "url": url}, status=409)
            self.state.create(repo_type, repo_id, private)
        self._json({"url": url, "name": repo_id})

    def _validate_yaml(self) -> None:
        import yaml

        content = json.loads(self._body() or b"{}").get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        if match:
            try:
                meta = yaml.safe_load(match.group(1))
                if meta is not None and not isinstance(meta, dict):
                    raise ValueError("metadata is not a mapping")
            except (yaml.YAMLError, ValueError) as err:
                return self._json({"errors": [{"message": str(err)}], "warnings": []}, status=400)
        self._json({"errors": [], "warnings": []})

    def _api_repo(self, repo_type: str, repo_id: str, rest: str, query: dict[str, list[str]]) -> None:
        method = self.command
        with self.state.lock:
            repo = self._repo(repo_type, repo_id)
            if rest == "" and method == "GET":
                return self._info(repo, repo.commits[repo.branches["main"]], query)
            if rest.startswith("/revision/") and method == "GET":
                return self._info(repo, self._commit(repo, rest[len("/revision/") :]), query)
            if rest.startswith("/preupload/") and method == "POST":
                return self._preupload(repo, rest[len("/preupload/") :])
            if rest.startswith("/commit/") and method == "POST":
                return self._commit_files(repo, rest[len("/commit/") :], query)
            if rest.startswith("/tree/") and method == "GET":
                revision, _, sub = rest[len("/tree/") :].partition("/")
                return self._tree(repo, self._commit(repo, revision), sub, query)
            if rest.startswith("/commits/") and method == "GET":
                return self._commits(repo, self._commit(repo, rest[len("/commits/") :]))
            if rest.startswith("/branch/") and method == "POST":
                return self._create_branch(repo, rest[len("/branch/") :])
            if rest == "/refs" and method == "GET":
                branches = [
                    {"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in repo.branches.items()
                ]
                return self._json({"branches": branches, "converts": [], "tags": []})
        raise _HttpError(404, f"no route for {method} /api/{repo_type}s/{repo_id}{rest}")

    def _create_branch(self, repo: Repo, branch: str) -> None:
        if branch in repo.branches:
            raise _HttpError(409, f"Reference refs/heads/{branch} already exists")
        start = json.loads(self._body() or b"{}").get("startingPoint") or "main"
        repo.branches[branch] = self._commit(repo, start).oid
        self._json({})

    def _info(self, repo: Repo, commit: Commit, query: dict[str, list[str]]) -> None:
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(commit.files):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=len(commit.files[path]), blobId=git_hash(commit.files[path]))
            siblings.append(sibling)
        info: dict[str, Any] = {
            "id": repo.repo_id,
            "_id": hashlib.sha1(repo.repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "siblings": siblings,
            "tags": [],
            "downloads": 0,
            "likes": 0,
        }
        readme = commit.files.get("README.md")
        if readme is not None:
            meta = _card_metadata(readme.decode("utf-8", errors="replace"))
            if meta:
                info["cardData"] = meta
                info["tags"] = list(meta.get("tags") or [])
                if meta.get("library_name"):
                    info["library_name"] = meta["library_name"]
                if meta.get("model-index"):
                    info["model-index"] = meta["model-index"]
        if "config.json" in commit.files:
            with contextlib.suppress(ValueError):
                info["config"] = json.loads(commit.files["config.json"])
        self._json(info)

    def _preupload(self, repo: Repo, revision: str) -> None:
        payload = json.loads(self._body() or b"{}")
        commit = repo.resolve(revision)  # a new branch has no commit yet: every file is new
        files = commit.files if commit is not None else {}
        answer = []
        for item in payload.get("files", []):
            path = item["path"]
            oid = git_hash(files[path]) if path in files else None
            answer.append({"path": path, "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
        self._json({"files": answer, "commitOid": commit.oid if commit else None})

    def _commit_files(self, repo: Repo, revision: str, query: dict[str, list[str]]) -> None:
        if query.get("create_pr"):
            raise _HttpError(400, "pull requests are not supported by the loopback hub")
        lines = [json.loads(line) for line in self._commit_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HttpError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        head_oid = repo.branches.get(revision)
        if head_oid is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        parent = header.get("parentCommit")
        if parent is not None and parent != head_oid:
            raise _HttpError(412, f"A commit has happened since {parent}; the branch head is {head_oid}")
        files = dict(repo.commits[head_oid].files)
        for item in lines[1:]:
            key, value = item.get("key"), item.get("value", {})
            if key == "file":
                content = value.get("content", "")
                files[value["path"]] = (
                    base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                )
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise _HttpError(
                        404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound"
                    )
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            else:  # lfsFile: never requested, since preupload always answers "regular"
                raise _HttpError(400, f"unsupported commit operation {key!r}")
        commit = self.state.new_commit(
            repo, head_oid, header.get("summary", ""), header.get("description", ""), files
        )
        repo.branches[revision] = commit.oid
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        self._json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.endpoint}/{prefix}{repo.repo_id}/commit/{commit.oid}",
                "pullRequestUrl": None,
            }
        )

    def _tree(self, repo: Repo, commit: Commit, sub: str, query: dict[str, list[str]]) -> None:
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in commit.files):
            raise _HttpError(404, f"{sub} does not exist at {commit.oid}", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for path in sorted(commit.files):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            parts = rel.split("/")
            # folders on the way (all of them when recursive, only the first level otherwise)
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                folder = prefix + "/".join(parts[:depth])
                entries.setdefault(
                    folder, {"type": "directory", "path": folder, "oid": git_hash(folder.encode())}
                )
            if recursive or len(parts) == 1:
                data = commit.files[path]
                entries[path] = {"type": "file", "path": path, "size": len(data), "oid": git_hash(data)}
        self._json(list(entries.values()))

    def _commits(self, repo: Repo, commit: Commit) -> None:
        self._json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "date": c.date,
                    "authors": [{"user": repo.repo_id.split("/")[0]}],
                }
                for c in repo.history(commit.oid)
            ]
        )

    def _resolve(self, repo_type: str, repo_id: str, revision: str, filename: str) -> None:
        head = self.command == "HEAD"
        with self.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, unquote(revision))
            data = commit.files.get(filename)
        if data is None:
            return self._error(
                404, f"Entry not found: {filename}", "EntryNotFound", {"X-Repo-Commit": commit.oid}
            )
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_hash(data)}"',
            "Accept-Ranges": "bytes",
        }
        status, body = 200, data
        if (spec := self.headers.get("Range")) and (match := re.match(r"bytes=(\d*)-(\d*)$", spec.strip())):
            start = int(match.group(1) or 0)
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data) and len(data) > 0:
                headers["Content-Range"] = f"bytes */{len(data)}"
                return self._send(416, b"", headers=headers, head=head)
            body = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
            status = 206
        self._send(status, body, content_type="application/octet-stream", headers=headers, head=head)


class _HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _card_metadata(text: str) -> dict[str, Any] | None:
    import yaml

    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return meta if isinstance(meta, dict) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: HubState


class LoopbackHub:
    """Start/stop the server; ``with LoopbackHub() as hub:`` yields it with ``hub.endpoint`` set.

    Attributes:
        endpoint: ``http://127.0.0.1:PORT`` once started.
        state: the in-memory :class:`HubState` (repos, commits, request log).
    """

    def __init__(self) -> None:
        self.state = HubState()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    def start(self) -> LoopbackHub:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self.state
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        host, port = server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests
    def commit_count(self, repo_id: str, repo_type: str = "model", branch: str = "main") -> int:
        with self.state.lock:
            repo = self.state.repos[(repo_type, repo_id)]
            return len(repo.history(repo.branches[branch]))

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        with self.state.lock:
            commit = self.state.repos[(repo_type, repo_id)].resolve(revision)
            assert commit is not None, f"no revision {revision} in {repo_id}"
            return dict(commit.files)

    def put_files(self, repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> str:
        return self.state.put_files(repo_id, files, repo_type=repo_type)

    @contextlib.contextmanager
    def patch_client(self, cache_dir: str | os.PathLike | None = None) -> Iterator[None]:
        """Point huggingface_hub (hence transformers/timm) at this server, online, for the block.

        ``HF_ENDPOINT`` is read once at import into ``constants.ENDPOINT`` /
        ``HUGGINGFACE_CO_URL_TEMPLATE`` and into the module-level ``HfApi`` behind
        ``huggingface_hub.model_info`` & co; all three are swapped here and restored after.
        ``cache_dir`` (recommended: a temp folder) becomes ``HF_HUB_CACHE``.
        """
        from huggingface_hub import constants, hf_api

        saved = {
            "ENDPOINT": constants.ENDPOINT,
            "HUGGINGFACE_CO_URL_TEMPLATE": constants.HUGGINGFACE_CO_URL_TEMPLATE,
            "HF_HUB_OFFLINE": constants.HF_HUB_OFFLINE,
            "HF_HUB_CACHE": constants.HF_HUB_CACHE,
        }
        saved_api_endpoint = hf_api.api.endpoint
        saved_env = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE")}
        try:
            constants.ENDPOINT = self.endpoint
            constants.HUGGINGFACE_CO_URL_TEMPLATE = self.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
            constants.HF_HUB_OFFLINE = False
            hf_api.api.endpoint = self.endpoint
            os.environ["HF_ENDPOINT"] = self.endpoint  # for subprocesses (the CLI under test)
            os.environ["HF_HUB_OFFLINE"] = "0"
            if cache_dir is not None:
                constants.HF_HUB_CACHE = str(Path(cache_dir))
                os.environ["HF_HUB_CACHE"] = str(Path(cache_dir))
            yield
        finally:
            for key, value in saved.items():
                setattr(constants, key, value)
            hf_api.api.endpoint = saved_api_endpoint
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


__all__ = ["Commit", "HubState", "LoopbackHub", "Repo"]
