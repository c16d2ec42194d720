"""A downloaded repo whose file list names a path outside its folder (``..``, absolute) is refused
with one line before anything is downloaded; nothing lands outside the cache."""

from __future__ import annotations

import pytest

from hfssl import HfsslConfig, HfsslModel
from hfssl.errors import HubError
from hfssl.hub import load_feature_extractor, push_checkpoint
from hfssl.hub.remote import check_repo_paths, safe_snapshot


@pytest.mark.parametrize(
    "bad", ["../escaped.safetensors", "sub/../../escaped.json", "/etc/escaped.json", "C:/escaped.json"]
)
def test_pull_refuses_a_repo_listing_a_path_outside_its_folder(hub, tmp_path, bad):
    folder = tmp_path / "backbone"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    push_checkpoint(folder, "org/evil")
    hub.put_files("org/evil", {bad: b"not yours"})
    before = set(tmp_path.rglob("*"))
    for pull in (lambda: safe_snapshot("org/evil"), lambda: load_feature_extractor("org/evil")):
        with pytest.raises(HubError) as info:
            pull()
        line = info.value.one_line()
        assert "unsafe file path" in line and repr(bad) in line and "\n" not in line
    assert set(tmp_path.rglob("*")) == before  # nothing downloaded, nothing written
    assert not [r for r in hub.state.requests if "/resolve/" in r[1]]


@pytest.mark.parametrize("ok", ["model.safetensors", "sub/dir/config.json", "a..b.json", ".gitattributes"])
def test_ordinary_paths_pass(ok):
    check_repo_paths("org/fine", [ok])
