"""Evaluation protocols, one module each; :data:`PROTOCOLS` maps every protocol name to its class.

``linear`` and ``knn`` fit on cached frozen features; ``finetune``, ``warmup``, ``frozen`` and
``scratch`` train extractor + head end to end; ``lora``
trains peft LoRA adapters + head; ``segmentation`` trains a U-Net decoder on DRIVE.
The interface (:class:`~eval_suite.protocols.base.Protocol`) is in ``base``;
``eval_suite.runner.evaluate`` looks the configured name up here and drives the protocol.
"""

from __future__ import annotations

from eval_suite.protocols.base import Protocol, to_memory_format, validation_score, volume_memory_format
from eval_suite.protocols.finetune import Finetune, Frozen, Scratch, Warmup
from eval_suite.protocols.knn import Knn
from eval_suite.protocols.linear import Linear
from eval_suite.protocols.lora import Lora
from eval_suite.protocols.segmentation import Segmentation

PROTOCOLS: dict[str, type[Protocol]] = {
    cls.name: cls for cls in (Linear, Knn, Finetune, Warmup, Frozen, Scratch, Lora, Segmentation)
}

__all__ = ["PROTOCOLS", "Protocol", "to_memory_format", "validation_score", "volume_memory_format"]
