"""The zoo section of an entry's model card (the same text on the store's card and the pushed one)."""

from __future__ import annotations

from typing import Any


def card_appendix(info: dict[str, Any]) -> str:
    """The card's zoo section: budget, pretraining time and hardware, how to rebuild and continue."""
    pre = info["pretraining"]
    minutes = (pre.get("wall_seconds") or 0) / 60
    return "\n".join(
        [
            "## hfssl zoo entry",
            "",
            f"- Zoo name: `{info['name']}` (`zoo:{info['name']}` works wherever hfssl takes a checkpoint)",
            f"- Budget: `{info['budget']}` ({pre.get('global_step')} optimiser steps; recipe "
            f"`scripts/recipes/{pre.get('recipe')}`)",
            f"- Pretraining wall time: {minutes:.1f} min on {pre.get('hardware') or 'unknown hardware'}",
            f"- Rebuild: `{info['rebuild']}`",
            "- Continue pretraining (heads included, `pretext_model/`): "
            f"`hfssl pretrain --init-from zoo:{info['name']} ...`",
        ]
    )
