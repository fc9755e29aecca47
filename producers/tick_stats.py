"""What a tick file reader saw: rows read, skipped by reason, unknown codes, bad volumes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.kernel.screening import RejectReason
from producers.chunked_file import RowStats


@dataclass
class ReadStats(RowStats[RejectReason]):
    """What a reader saw: rows read, rows skipped (by reason), unknown codes, and the volumes
    screened out of rows that were used."""

    unknown_codes: Counter[str] = field(default_factory=Counter)
    bad_volumes: int = 0
