"""The zoo store's per-entry build lock: a dead builder's lock is taken over, a live one's is not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from hfssl.zoo.store import ZooStore, _lock_owner_alive


def test_a_killed_unreaped_builder_does_not_hold_its_entry(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # exits at once; not waited for: a zombie
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{child.pid}/stat")
        if not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.05)
    store = ZooStore(tmp_path)
    lock = store.lock_path("x", "cpu")
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{child.pid}@{socket.gethostname()}")
    try:
        assert not _lock_owner_alive(lock)
        with store.lock("x", "cpu") as held:
            assert held and lock.read_text() == f"{os.getpid()}@{socket.gethostname()}"
    finally:
        child.wait()
    assert not lock.exists()


def test_a_live_builder_keeps_its_entry(tmp_path: Path) -> None:
    store = ZooStore(tmp_path)
    with store.lock("x", "cpu") as first, store.lock("x", "cpu") as second:
        assert first and not second
