"""The ``lora`` protocol: LoRA adapters (``peft``) on the backbone + a fully trained head.

Low-rank adapters (Hu et al. 2021) on the backbone's attention projections - or its convolutions,
or modules named with ``--lora-targets`` (:func:`hfssl.hub.lora.find_lora_targets`) - are trained
with the head by the finetune loop (:func:`~eval_suite.protocols.finetune.run_finetune`, same recipe
and model selection); every base weight stays frozen. The record's ``parameters`` block holds the
trainable and total parameter counts. ``--save-adapter DIR`` writes the best epoch's adapter and head
in peft's format (``adapter_config.json`` + ``adapter_model.safetensors``, the head as a
``modules_to_save`` entry) plus ``hfssl_adapter.json``; ``hfssl push DIR`` publishes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eval_suite.protocols.base import EvalData, Outcome
from eval_suite.protocols.finetune import Finetune
from hfssl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from eval_suite.runner import EvalConfig
    from hfssl.hub import FeatureExtractor

BACKBONE_PREFIX = "extractor.backbone."


class Lora(Finetune):
    """End-to-end training of LoRA adapters + head; the backbone's own weights stay frozen."""

    name = "lora"

    @classmethod
    def validate(cls, cfg: EvalConfig, task: str | None = None) -> None:
        if task is None:
            if int(cfg.lora_rank) < 1:
                raise ConfigError(f"--lora-rank must be >= 1, got {cfg.lora_rank}", "pass e.g. --lora-rank 8")
            if float(cfg.lora_alpha) <= 0:
                raise ConfigError(
                    f"--lora-alpha must be > 0, got {cfg.lora_alpha}", "pass e.g. --lora-alpha 16"
                )
            if not 0.0 <= float(cfg.lora_dropout) < 1.0:
                raise ConfigError(
                    f"--lora-dropout must be in [0, 1), got {cfg.lora_dropout}",
                    "pass e.g. --lora-dropout 0.1",
                )
            from hfssl.hub.lora import require_peft

            require_peft()
        super().validate(cfg, task)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "lora_rank": int(self.cfg.lora_rank),
            "lora_alpha": float(self.cfg.lora_alpha),
            "lora_dropout": float(self.cfg.lora_dropout),
            "lora_targets": self.cfg.lora_targets,
        }

    def check_targets(self, extractor: FeatureExtractor) -> list[str]:
        """The backbone modules LoRA adapts (``ConfigError`` naming the modules found when none match)."""
        from hfssl.hub.lora import find_lora_targets

        return find_lora_targets(
            extractor.backbone, self.cfg.lora_targets, prefix=BACKBONE_PREFIX, spec=extractor.info.spec
        )

    def run(
        self,
        data: EvalData,
        extractor: FeatureExtractor,
        rows: np.ndarray,
        counts: list[int],
        seed: int,
        device: str,
    ) -> Outcome:
        from hfssl.hub.lora import apply_lora

        targets = self.check_targets(extractor)
        wrapped: dict[str, Any] = {}

        def wrap(classifier: torch.nn.Module) -> torch.nn.Module:
            wrapped["model"] = apply_lora(
                classifier,
                targets,
                rank=self.cfg.lora_rank,
                alpha=self.cfg.lora_alpha,
                dropout=self.cfg.lora_dropout,
                modules_to_save=["head"],
                base_model_name_or_path=str(self.cfg.checkpoint),
            )
            return wrapped["model"]

        outcome = super().run(data, extractor, rows, counts, seed, device, wrap=wrap)
        info = outcome.fit
        info["lora_target_modules"] = len(targets)
        if self.cfg.save_adapter:
            folder = Path(self.cfg.save_adapter)
            if len(self.cfg.seeds) > 1:
                folder = folder / f"seed{seed}"
            info["adapter_dir"] = str(
                save_trained_adapter(wrapped["model"], folder, self, data, extractor, seed)
            )
        return outcome


def save_trained_adapter(
    model: Any, folder: Path, protocol: Lora, data: EvalData, extractor: FeatureExtractor, seed: int
) -> Path:
    """Write the trained (best-epoch) adapter + head with what rebuilding the classifier needs."""
    from hfssl.hub.lora import parameter_counts, save_adapter

    cfg = protocol.cfg
    head = model.base_model.model.head if hasattr(model, "base_model") else model.head
    meta = {
        "base_model": str(cfg.checkpoint),
        "base_content_hash": extractor.info.content_hash,
        "dataset": data.name,
        "image_size": data.image_size,
        "input_size": extractor.input_size,
        "resize": extractor.resize,
        "task": data.task,
        "class_names": list(data.class_names),
        "head": cfg.head,
        "num_outputs": int(_num_outputs(head)),
        "ordinal_head": cfg.ordinal_head,
        "seed": int(seed),
        "lora": {k: v for k, v in protocol.params().items() if k.startswith("lora_")},
        "parameters": parameter_counts(model),
    }
    return save_adapter(model, folder, meta)


def _num_outputs(head: Any) -> int:
    import torch

    last = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    return int(last[-1].out_features) if last else 0
