"""``REPORT.md`` of a study: each claim restated with its verdict, the evidence and the numbers.

The verdicts come from :func:`eval_suite.studies.base.decide` (the rule is restated in every
report); nothing here decides a conclusion by itself. The html and plots come from the leaderboard
(``eval_suite.leaderboard.make_leaderboard``) run on the study's results folder.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval_suite.studies.base import MARGIN, Claim, Preset, Study, fmt_comp, md_table
from eval_suite.studies.grid import GridResult
from hfssl.errors import HfsslError
from hfssl.utils.io import write_text_atomic
from hfssl.utils.logging import get_logger

logger = get_logger("eval_suite.studies.report")

VERDICT_RULE = (
    "Each claim is tested by paired comparisons (same seeds, same test set; delta = mean over seeds, 95 % CI "
    "from a paired bootstrap over test samples). A comparison supports or contradicts the claim by where its CI "
    "lies (the claim's test says how). Verdict: **agree** when at least half of the comparisons support the claim "
    "and supporters outnumber contradictors at least 2:1; **disagree** symmetrically; otherwise **can't tell** "
    f'(inconclusive or mixed evidence). "Marginal" means the whole CI lies below {MARGIN:g}.'
)


def render_claim(claim: Claim) -> str:
    lines = [
        f"### {claim.key}: **{claim.verdict}**",
        "",
        f"> {claim.statement}",
        "",
        f"*Source:* {claim.source}  ",
        f"*Test:* {claim.test}  ",
        f"*Evidence:* {claim.reason}",
        "",
    ]
    if claim.comparisons:
        rows = [
            [c.label, c.metric, fmt_comp(c), str(c.n_pairs), c.outcome, c.note] for c in claim.comparisons
        ]
        lines.append(md_table(["comparison", "metric", "delta [95 % CI]", "seeds", "outcome", "note"], rows))
        lines.append("")
    return "\n".join(lines)


def render_report(
    study: Study,
    preset: Preset,
    result: GridResult,
    claims: Sequence[Claim],
    tables: str,
    *,
    leaderboard: Any | None = None,
    extra_sections: Sequence[str] = (),
) -> str:
    n_records = sum(len(v) for v in result.records.values())
    summary_rows = [[c.key, c.verdict, c.reason] for c in claims]
    parts = [
        f"# Study: {study.title} (`{study.name}`, preset `{preset.name}`)",
        "",
        study.summary,
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `hfssl study {study.name} --preset {preset.name}`: "
        f"{len(result.cells)} cells, {n_records} result records, seeds {list(preset.seeds)}, "
        f"pretraining {preset.pretrain_steps} steps x batch {preset.pretrain_batch}, 2D backbone "
        f"{preset.backbone_2d}, 3D backbone {preset.backbone_3d}, evaluation recipe `{preset.eval_preset}`"
        + (f" ({preset.epochs} epochs)" if preset.epochs else "")
        + (f", at most {preset.max_train_samples} training rows" if preset.max_train_samples else "")
        + (f" and {preset.max_eval_samples} test rows" if preset.max_eval_samples else "")
        + ".",
        "",
    ]
    if preset.name == "smoke":
        parts += [
            "**Smoke preset:** a plumbing check at toy scale; its verdicts say nothing about the paper's claims.",
            "",
        ]
    parts += [
        "## Verdicts",
        "",
        md_table(["claim", "verdict", "evidence"], summary_rows),
        "",
        f"*How verdicts are decided:* {VERDICT_RULE}",
        "",
        "## Claims",
        "",
        *[render_claim(c) for c in claims],
        "## Numbers",
        "",
        tables or "(no comparisons)",
        "",
    ]
    for section in extra_sections:
        parts += [section, ""]
    if leaderboard is not None:
        parts += [
            "## Leaderboard",
            "",
            "Per setting rankings, per-class recall and curves: [leaderboard.md](leaderboard/leaderboard.md), "
            "[leaderboard.html](leaderboard/leaderboard.html), plots in `leaderboard/plots/`.",
            "",
        ]
    return "\n".join(parts)


def write_report(
    out_dir: str | Path,
    study: Study,
    preset: Preset,
    result: GridResult,
    *,
    leaderboard_plots: bool = True,
    extra_sections: Sequence[str] = (),
) -> tuple[Path, list[Claim]]:
    """Assess the claims, build the leaderboard (md/html/plots) and write ``OUT/REPORT.md``."""
    from eval_suite.leaderboard import make_leaderboard

    out = Path(out_dir)
    claims, tables = study.assess(result, preset)
    sections = list(extra_sections)
    lb = None
    try:
        lb = make_leaderboard(
            [out / "results"],
            out / "leaderboard",
            plots=leaderboard_plots,
            title=f"hfssl study {study.name} ({preset.name})",
            n_resamples=preset.n_bootstrap,
        )
    except (HfsslError, TypeError, ValueError, KeyError) as err:
        # the claims above do not depend on the leaderboard: keep the report, say what failed
        logger.warning(f"leaderboard failed: {err!r}")
        sections.append(f"## Leaderboard\n\nThe leaderboard could not be built: `{err!r}`.")
    text = render_report(study, preset, result, claims, tables, leaderboard=lb, extra_sections=sections)
    path = out / "REPORT.md"
    write_text_atomic(path, text)
    return path, claims
