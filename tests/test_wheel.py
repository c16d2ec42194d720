"""The built wheel works on its own: a fresh virtual environment outside the checkout, with the
wheel installed, imports hfssl (Auto classes registered), runs ``hfssl --help`` and pushes a
tiny checkpoint with its rendered model card to the loopback Hub (templates from the wheel).

The new environment sees the dependencies through a ``.pth`` line naming this interpreter's
``site-packages`` (a ``.pth`` line adds the folder without running the ``.pth`` files in it, so
an editable install of hfssl there stays invisible); hfssl itself comes only from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hfssl import HfsslConfig, HfsslModel
from tests.hub.hub_server import LoopbackHub

ROOT = Path(__file__).resolve().parents[1]

IMPORT_CHECK = """
import sys, hfssl
assert hfssl.__file__.startswith(sys.prefix), hfssl.__file__
assert "torch" not in sys.modules
from transformers import AutoConfig
assert type(AutoConfig.for_model("hfssl")).__name__ == "HfsslConfig"
from hfssl.hub.cards import templates_dir
print(hfssl.__version__, hfssl.__file__, templates_dir())
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HFSSL_MODEL_CARDS_DIR")}
    build = tmp / "build"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(build),
            str(ROOT),
        ],
        cwd=tmp,
        env=env,
    )
    (wheel,) = build.glob("hfssl-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp, env).strip()
    )
    (site / "_hfssl_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        cwd=tmp,
        env=env,
    )
    return venv, env


def test_wheel_imports_and_registers(wheel_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    venv, env = wheel_env
    version, module_file, templates = _run(
        [str(venv / "bin" / "python"), "-c", IMPORT_CHECK], tmp_path, env
    ).split()
    assert Path(module_file).is_relative_to(venv) and not Path(module_file).is_relative_to(ROOT)
    assert Path(templates).is_relative_to(venv) and (Path(templates) / "backbone.md.j2").is_file()
    from hfssl import __version__

    assert version == __version__
    assert "usage: hfssl <command>" in _run(
        [str(venv / "bin" / "hfssl"), "--help"], tmp_path, env, timeout=60
    )


def test_wheel_push_renders_card(wheel_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    venv, env = wheel_env
    folder = tmp_path / "backbone"
    HfsslModel(HfsslConfig(backbone="test_resnet", in_chans=1, image_size=28)).save_pretrained(folder)
    with LoopbackHub() as hub, hub.patch_client(cache_dir=tmp_path / "hf-cache"):
        push_env = {**env, **{k: os.environ[k] for k in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE")}}
        out = _run(
            [str(venv / "bin" / "hfssl"), "push", str(folder), "--repo-id", "org/wheel"], tmp_path, push_env
        )
        assert "pushed" in out
        readme = hub.files("org/wheel")["README.md"].decode()
    # the header from ModelCardData, the body from backbone.md.j2 and its partials (_citation.md.j2)
    assert readme.startswith("---\nlibrary_name: hfssl\n") and "doi={10.1016/j.media.2023.102879}" in readme
    assert "{%" not in readme and "{{" not in readme
