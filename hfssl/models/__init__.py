"""hfssl's model core: config, backbone, task models, U-Net decoder, timm export.

Importing this package (``import hfssl`` does) registers

* ``HfsslConfig`` / ``HfsslModel`` / ``HfsslForImageClassification`` / ``HfsslForSegmentation``
  with ``AutoConfig``, ``AutoModel``, ``AutoModelForImageClassification`` and
  ``AutoModelForSemanticSegmentation`` (model type ``"hfssl"``), so
  ``AutoModel.from_pretrained(path_or_repo)`` works without ``trust_remote_code``;
* the timm architectures ``hfssl_<resnet>_smallstem``, so exported small-stem checkpoints load
  with ``timm.create_model`` after ``import hfssl``.
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
)

from hfssl.models.backbones import SMALL_STEM_BASES, register_timm_architectures, small_stem_arch_name
from hfssl.models.configuration import BACKBONES_3D, HfsslConfig
from hfssl.models.decoders import UNetDecoder
from hfssl.models.heads import (
    DEFAULT_ORDINAL_HEAD,
    ORDINAL_HEADS,
    ClassificationHead,
    check_ordinal_head,
    cumulative_loss,
    dice_loss,
    ordinal_num_outputs,
    ordinal_probabilities,
    segmentation_loss,
)
from hfssl.models.layers import init_module_weights
from hfssl.models.modeling import (
    HfsslForImageClassification,
    HfsslForSegmentation,
    HfsslModel,
    HfsslModelOutput,
    HfsslPreTrainedModel,
    TransferReport,
)

AutoConfig.register(HfsslConfig.model_type, HfsslConfig, exist_ok=True)
AutoModel.register(HfsslConfig, HfsslModel, exist_ok=True)
AutoModelForImageClassification.register(HfsslConfig, HfsslForImageClassification, exist_ok=True)
AutoModelForSemanticSegmentation.register(HfsslConfig, HfsslForSegmentation, exist_ok=True)
register_timm_architectures()

__all__ = [
    "BACKBONES_3D",
    "SMALL_STEM_BASES",
    "ClassificationHead",
    "DEFAULT_ORDINAL_HEAD",
    "ORDINAL_HEADS",
    "check_ordinal_head",
    "cumulative_loss",
    "ordinal_num_outputs",
    "ordinal_probabilities",
    "HfsslConfig",
    "HfsslForImageClassification",
    "HfsslForSegmentation",
    "HfsslModel",
    "HfsslModelOutput",
    "HfsslPreTrainedModel",
    "TransferReport",
    "UNetDecoder",
    "dice_loss",
    "init_module_weights",
    "segmentation_loss",
    "small_stem_arch_name",
]
