"""Pretext tasks: self-supervised objectives that train an ``HfsslModel`` backbone.

Reusable, model-agnostic building blocks (losses, heads, EMA, queues, permutation sets,
patch/cube cutting, rotations, Models Genesis transforms, masking, crop pairs) live in
:mod:`hfssl.pretext.blocks`; each method is one module on top of them.

``create_pretext_model("rot+simclr", backbone_config)`` builds any method or combination;
``list_pretext_tasks()`` names them.
"""

from hfssl.pretext.factory import create_pretext_model
from hfssl.pretext.registry import get_pretext_class, list_pretext_tasks, parse_method_spec, register_all

__all__ = [
    "create_pretext_model",
    "get_pretext_class",
    "list_pretext_tasks",
    "parse_method_spec",
    "register_all",
]
