"""Pretext tasks: self-supervised objectives that train an ``HfsslModel`` backbone.

Reusable, model-agnostic building blocks (losses, heads, EMA, queues, permutation sets,
patch/cube cutting, rotations, Models Genesis transforms, masking, crop pairs) live in
:mod:`hfssl.pretext.blocks`; each method is one module on top of them.
"""
