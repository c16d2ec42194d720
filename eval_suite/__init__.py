"""hfssl evaluation suite: finetune or probe any checkpoint on imbalanced medical data.

It consumes checkpoints only through their public format (config.json + model.safetensors,
timm and transformers specs), never through hfssl internals.
"""

from hfssl.version import __version__ as __version__  # one distribution, one version
