"""SIGKILL during ``hfssl push`` (the loopback Hub stalls mid-upload): the repo holds the old or the
new revision whole, never a mix of the two, and running the push again completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hfssl import HfsslConfig, HfsslModel
from hfssl.hub import push_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _checkpoint(folder: Path, seed: int, image_size: int) -> Path:
    torch.manual_seed(seed)
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=image_size)).save_pretrained(folder)
    return folder


def _push_cli(folder: Path, repo_id: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "hfssl", "push", str(folder), "--repo-id", repo_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("rest_arrives", [False, True], ids=["upload-lost", "upload-arrived"])
def test_push_killed_mid_upload_leaves_old_or_new_revision_and_rerun_completes(hub, tmp_path, rest_arrives):
    old = _checkpoint(tmp_path / "old", seed=0, image_size=28)
    new = _checkpoint(tmp_path / "new", seed=1, image_size=32)  # weights and config.json differ
    push_checkpoint(old, "org/killed")
    old_files = hub.files("org/killed")
    new_weights = (new / "model.safetensors").read_bytes()
    assert old_files["model.safetensors"] != new_weights

    hub.state.stall_commits = True
    hub.state.stall_loses_rest = not rest_arrives
    proc = _push_cli(new, "org/killed")
    try:
        assert hub.state.commit_stalled.wait(timeout=120), "the push never reached the commit"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        hub.state.stall_commits = False
        hub.state.release_commits.set()  # the stalled handler reads what is left of the upload
    assert proc.returncode == -signal.SIGKILL

    files = hub.files("org/killed")
    assert (files == old_files) == (not rest_arrives)
    if rest_arrives:  # the whole upload had reached the server: the new revision, whole
        assert files["model.safetensors"] == new_weights
        assert files["config.json"] == (new / "config.json").read_bytes()
        assert set(files) >= set(old_files)

    rerun = _push_cli(new, "org/killed")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    done = hub.files("org/killed")
    assert done["model.safetensors"] == new_weights
    assert done["config.json"] == (new / "config.json").read_bytes() and "README.md" in done
