"""LoRA adapters on any feature extractor's backbone, through ``peft``.

* :func:`find_lora_targets` - the full names of the modules to adapt: by default the attention
  projections (query/value as in Hu et al. 2021: ``query``/``value`` in transformers ViTs, DINOv2,
  ViT-MAE and Swin, ``q_proj``/``v_proj`` in CLIP/SigLIP towers, the fused ``qkv`` of timm ViTs),
  or every convolution / linear layer, or names the user gives;
* :func:`apply_lora` - ``peft.get_peft_model`` with a ``LoraConfig`` on those modules; the modules
  named in ``modules_to_save`` (the classification head) train fully and are saved with the adapter;
* :func:`parameter_counts` - trainable and total parameters (peft's frozen copy of a saved module
  is not counted twice);
* :func:`save_adapter` - peft's own format (``adapter_config.json`` + ``adapter_model.safetensors``)
  plus ``hfssl_adapter.json`` (base checkpoint, head, input size), written to a temporary sibling
  folder and renamed into place.

``peft`` is an optional dependency (``pip install 'hfssl[peft]'``); it is imported on first use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from hfssl.errors import CheckpointError, ConfigError, HfsslError

# (query, value) projections per family; a model's attention is recognised by these leaf names
ATTENTION_NAMES: tuple[str, ...] = ("query", "value", "q_proj", "v_proj", "qkv")
TARGET_KINDS = ("auto", "attention", "conv", "linear", "attention+conv")
ADAPTER_META = "hfssl_adapter.json"


def require_peft() -> Any:
    """The ``peft`` module, or a one-line error saying how to install it."""
    try:
        import peft
    except ImportError as err:  # pragma: no cover - peft is in the test extra
        raise ConfigError(
            "LoRA needs the peft package, which is not installed", "pip install 'hfssl[peft]'"
        ) from err
    return peft


def _lora_supported(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))


def find_lora_targets(
    root: nn.Module, targets: str = "auto", *, prefix: str = "", spec: str = ""
) -> list[str]:
    """Full names (``prefix`` + name in ``root``) of the modules LoRA adapts.

    ``targets``: ``auto``/``attention`` (query and value projections), ``conv`` (every convolution
    but the first, which sees the raw image), ``linear``, ``attention+conv``, or comma-separated
    module names / name suffixes (``query,key,value``). ``ConfigError`` listing the module names
    found when nothing matches."""
    named = [(n, m) for n, m in root.named_modules() if n and _lora_supported(m)]
    text = (targets or "auto").strip()
    kinds = {"auto": ("attention",), "attention": ("attention",), "conv": ("conv",), "linear": ("linear",)}
    kinds["attention+conv"] = ("attention", "conv")
    chosen: list[str] = []
    if text in kinds:
        convs = [n for n, m in named if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
        for kind in kinds[text]:
            if kind == "attention":
                chosen += [
                    n for n, m in named if isinstance(m, nn.Linear) and n.split(".")[-1] in ATTENTION_NAMES
                ]
            elif kind == "conv":
                chosen += convs[1:] if len(convs) > 1 else []
            else:
                chosen += [n for n, m in named if isinstance(m, nn.Linear)]
    else:
        wanted = [t.strip() for t in text.split(",") if t.strip()]
        chosen = [n for n, _ in named if any(n == w or n.endswith("." + w) for w in wanted)]
    if not chosen:
        leaves = sorted({n.split(".")[-1] for n, _ in named})
        shown = ", ".join(leaves[:25]) + (" ..." if len(leaves) > 25 else "")
        raise ConfigError(
            f"no module of {spec or type(root).__name__} matches --lora-targets {text!r} "
            f"(its linear/conv modules are named: {shown or 'none'})",
            f"pass --lora-targets with some of those names (comma-separated) or one of: {', '.join(TARGET_KINDS)}",
        )
    seen: dict[str, None] = {}
    for name in chosen:
        seen.setdefault(f"{prefix}{name}", None)
    return list(seen)


def apply_lora(
    model: nn.Module,
    target_modules: Sequence[str],
    *,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    modules_to_save: Sequence[str] = (),
    base_model_name_or_path: str | None = None,
) -> Any:
    """``model`` as a ``peft.PeftModel``: LoRA on ``target_modules``, everything else frozen but
    ``modules_to_save`` (trained in full and stored with the adapter)."""
    peft = require_peft()
    config = peft.LoraConfig(
        r=int(rank),
        lora_alpha=float(alpha),
        lora_dropout=float(dropout),
        target_modules=list(target_modules),
        modules_to_save=list(modules_to_save) or None,
    )
    peft_model = peft.get_peft_model(model, config)
    # set after wrapping: peft resets it from the (config-less) wrapped module, with a warning
    peft_model.peft_config["default"].base_model_name_or_path = base_model_name_or_path
    return peft_model


def _saved_copies(model: nn.Module) -> list[nn.Module]:
    """The frozen originals that peft keeps next to each trained ``modules_to_save`` copy."""
    return [
        m.original_module
        for m in model.modules()
        if hasattr(m, "modules_to_save") and isinstance(getattr(m, "original_module", None), nn.Module)
    ]


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``{"trainable": n, "total": m}``: parameters with ``requires_grad`` and all parameters,
    peft's frozen originals of saved modules left out (they are not part of the final model)."""
    copies = {id(p) for c in _saved_copies(model) for p in c.parameters()}
    trainable = total = 0
    for p in model.parameters():
        if id(p) in copies:
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable": int(trainable), "total": int(total)}


def save_adapter(peft_model: Any, folder: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write the adapter (peft's ``save_pretrained``) and ``hfssl_adapter.json`` to ``folder``,
    atomically: a temporary sibling folder renamed into place (an existing adapter is replaced)."""
    from hfssl.training.checkpointing import atomic_dir

    final = Path(folder)
    with atomic_dir(final) as tmp:
        # save_embedding_layers=False: peft would otherwise look the base model up (on the Hub) to
        # see whether its vocabulary changed - a vision adapter has none
        peft_model.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
        (tmp / ADAPTER_META).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    return final


def render_adapter_card(folder: str | os.PathLike, repo_id: str, *, license: str = "apache-2.0") -> str:
    """The model card (``model_cards/adapter.md.j2``) of the adapter saved in ``folder``."""
    import jinja2
    from huggingface_hub import ModelCardData

    from hfssl.hub.cards import templates_dir
    from hfssl.hub.remote import check_repo_id

    meta = read_adapter_meta(folder)
    base = str(meta.get("base_model", ""))
    try:  # card metadata may name a Hub repo only; a local base model is named in the text
        base_repo: str | None = (
            check_repo_id(base.split("@")[0]) if "/" in base and not Path(base).exists() else None
        )
    except HfsslError:  # not a repo id
        base_repo = None
    data = ModelCardData(
        library_name="peft",
        license=license,
        base_model=base_repo,
        tags=["hfssl", "lora", "peft", "medical-imaging", str(meta.get("dataset", ""))],
        pipeline_tag="image-classification",
    )
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=False)
    context = {
        "card_data": data.to_yaml(),
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "base_model": base,
        "lora": meta.get("lora", {}),
        "parameters": meta.get("parameters") or {"trainable": 0, "total": 1},
        **{k: meta.get(k) for k in ("dataset", "image_size", "input_size", "resize", "class_names", "head")},
        **{k: meta.get(k) for k in ("num_outputs", "seed")},
        "base_content_hash": str(meta.get("base_content_hash") or ""),
    }
    return env.get_template("adapter.md.j2").render(**context)


def is_adapter_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a saved adapter (peft's ``adapter_config.json``)."""
    return (Path(folder) / "adapter_config.json").is_file()


def read_adapter_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """``hfssl_adapter.json`` of a saved adapter; ``CheckpointError`` when the folder is no adapter."""
    folder = Path(folder)
    for name in ("adapter_config.json", "adapter_model.safetensors", ADAPTER_META):
        if not (folder / name).is_file():
            raise CheckpointError(
                f"{folder} is not an hfssl LoRA adapter (no {name})",
                "give a folder written by hfssl evaluate --protocol lora --save-adapter",
            )
    return json.loads((folder / ADAPTER_META).read_text(encoding="utf-8"))
