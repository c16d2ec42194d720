"""``import hfssl`` registers the Auto classes without importing torch until transformers is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
{first}
import hfssl
assert "torch" not in sys.modules or {torch_ok}, "import hfssl imported torch"
from transformers import AutoConfig
assert type(AutoConfig.for_model("hfssl")).__name__ == "HfsslConfig"  # AutoConfig alone registers
from transformers import AutoModel, AutoModelForPreTraining
assert type(AutoConfig.for_model("hfssl_byol")).__name__.endswith("Config")
from hfssl import _autoregister
assert _autoregister.is_registered() and _autoregister._HOOK not in sys.meta_path
print("ok")
"""


@pytest.mark.parametrize(
    "first",
    ["", "import hfssl.pretext.simclr", "import transformers.models.auto.configuration_auto"],
    ids=["plain", "pretext-module-first", "transformers-first"],
)
def test_import_hfssl_registers_auto_classes(first: str) -> None:
    code = CHECK.format(first=first, torch_ok=bool(first))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


@pytest.mark.slow  # a fresh interpreter importing torch + transformers: 20-40 s on a busy 2-core CPU
def test_auto_model_imported_first_after_hfssl() -> None:
    """``from transformers import AutoModel`` as the first transformers import after ``import hfssl``
    (what ``import peft`` does) imports the trigger from inside the half-imported ``modeling_auto``:
    registration must wait for it rather than fail with "Could not import module 'AutoModel'"."""
    code = (
        "import hfssl\nfrom transformers import AutoModel\n"
        "from transformers import AutoConfig\nfrom hfssl import _autoregister\n"
        "assert _autoregister.is_registered()\n"
        "assert type(AutoConfig.for_model('hfssl')).__name__ == 'HfsslConfig'\nprint('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
