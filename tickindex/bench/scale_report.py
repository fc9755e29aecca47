"""How ``bench --scale`` figures are shown: one JSON object, or lines of text."""

from __future__ import annotations

import dataclasses
from typing import Any

from tickindex.bench.scale import FamilyFigures, ScaleBenchResult


def scale_payload(result: ScaleBenchResult, core: int | None) -> dict[str, Any]:
    """The figures as one JSON-ready object (``cpu_core`` None when not pinned)."""
    return dataclasses.asdict(result) | {"cpu_core": core}


def format_scale_result(result: ScaleBenchResult, core: int | None) -> str:
    """Human-readable report."""
    where = f"pinned to CPU core {core}" if core is not None else "all cores"
    scale = result.scale
    return "\n".join(
        [
            f"scale world: {scale.securities:,} securities, {scale.indices:,} indices, "
            f"{scale.memberships:,} memberships (seed {result.seed}; {where})",
            f"load       : {result.load_s:.2f} s from files (written in {result.write_s:.1f} s "
            f"by a child process); max RSS {result.rss_before_load_bytes / 1e6:,.0f} MB before, "
            f"{result.rss_after_load_bytes / 1e6:,.0f} MB after loading",
            _family_line("scale", scale, result.batch_size),
            _family_line("built-in", result.builtin, result.batch_size),
            f"ratio      : {result.ratio:.3f} (scale levels/s / built-in levels/s, same run, "
            f"the families taking turns); {result.cpu_ratio:.3f} per CPU second; "
            f"max RSS {result.max_rss_bytes / 1e6:,.0f} MB",
        ]
    )


def _family_line(name: str, figures: FamilyFigures, batch_size: int) -> str:
    return (
        f"{name:<11}: {figures.ticks:,} ticks in batches of {batch_size:,}: "
        f"{figures.ticks_per_s:,.0f} ticks/s, {figures.levels_per_s:,.0f} levels/s "
        f"({figures.levels_per_tick:.2f} levels per tick; {figures.levels_per_cpu_s:,.0f} levels "
        f"per CPU second); {figures.checked_indices} final levels checked, max relative "
        f"difference {figures.max_rel_diff:.1e}"
    )
