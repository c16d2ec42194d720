"""The loopback Hub test server speaks the protocol huggingface_hub 2.4 expects."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils.sha import git_hash

from tests.hub.hub_server import LoopbackHub


def test_commit_download_and_listing(hub, tmp_path):
    api = HfApi()
    url = api.create_repo("org/files")
    assert url == f"{hub.endpoint}/org/files" and api.create_repo("org/files", exist_ok=True) == url
    info = api.upload_file(path_or_fileobj=b"hello", path_in_repo="sub/a.txt", repo_id="org/files")
    assert api.repo_info("org/files").sha == info.oid
    assert api.list_repo_files("org/files") == [".gitattributes", "sub/a.txt"]
    top = {f.path for f in api.list_repo_tree("org/files")}
    assert top == {".gitattributes", "sub"}  # non-recursive: the folder, not its files
    (entry,) = [f for f in api.list_repo_tree("org/files", recursive=True) if f.path == "sub/a.txt"]
    assert entry.size == 5 and entry.blob_id == git_hash(b"hello")
    path = hf_hub_download("org/files", "sub/a.txt", cache_dir=tmp_path / "c")
    assert open(path, "rb").read() == b"hello"
    assert f"/snapshots/{info.oid}/" in path
    # the same upload again is a no-op on the client side: no empty commit
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="sub/a.txt", repo_id="org/files")
    assert hub.commit_count("org/files") == 2


def test_errors_map_to_typed_client_errors(hub, tmp_path):
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/missing")
    api.create_repo("org/e")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/e", revision="nope")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/e", "missing.txt", cache_dir=tmp_path / "c")


def test_range_requests_and_headers(hub):
    oid = hub.put_files("org/r", {"blob.bin": b"0123456789"})
    url = f"{hub.endpoint}/org/r/resolve/main/blob.bin"
    head = httpx2.head(url)
    assert head.headers["X-Repo-Commit"] == oid and head.headers["Content-Length"] == "10"
    assert head.headers["ETag"] == f'"{git_hash(b"0123456789")}"'
    part = httpx2.get(url, headers={"Range": "bytes=3-5"})
    assert part.status_code == 206 and part.content == b"345"


def test_context_manager_stops_the_server():
    with LoopbackHub() as server:
        endpoint = server.endpoint
        assert httpx2.get(f"{endpoint}/api/models/a/b").status_code == 404
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{endpoint}/api/models/a/b", timeout=2)
