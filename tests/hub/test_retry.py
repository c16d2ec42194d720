"""A busy or failing Hub (429/500/503 on the first requests): push and pull retry with backoff and
succeed, or stop with one clear line once the retry budget is spent."""

from __future__ import annotations

import pytest

from hfssl import HfsslConfig, HfsslModel
from hfssl.errors import HubError
from hfssl.hub import push_checkpoint


@pytest.fixture
def backbone(tmp_path):
    folder = tmp_path / "backbone"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("status", [429, 500, 503])
def test_push_retries_transient_failures(hub, backbone, status):
    hub.state.faults = [status, status]
    result = push_checkpoint(backbone, "org/retry")
    assert result.created_commit and hub.commit_count("org/retry") >= 1
    assert "model.safetensors" in hub.files("org/retry")
    assert not hub.state.faults


def test_push_stops_with_one_line_after_the_retry_budget(hub, backbone):
    hub.state.faults = [503] * 50
    with pytest.raises(HubError) as info:
        push_checkpoint(backbone, "org/retry")
    assert "503" in info.value.one_line() and "\n" not in info.value.one_line()


def test_pull_retries_transient_failures(hub, backbone):
    from hfssl.hub.remote import safe_snapshot

    push_checkpoint(backbone, "org/pull")
    hub.state.faults = [503, 429]
    folder = safe_snapshot("org/pull")
    assert (folder / "model.safetensors").is_file() and not hub.state.faults
