"""``AnalyticsBook``: the latest analytics record of every index, pair and signal stream."""

from __future__ import annotations

from consumers.level_client import RecordKey, record_key
from engine.analytics.records import AnalyticsRecord


class AnalyticsBook:
    """The latest record per stream of the analytics topic (``record_key``: kind, key and, for
    an index, whether it is the session close record)."""

    def __init__(self) -> None:
        self._latest: dict[RecordKey, AnalyticsRecord] = {}

    def apply(self, records: list[AnalyticsRecord]) -> None:
        """Keep the latest of ``records`` (already deduplicated, in topic order per stream)."""
        for record in records:
            self._latest[record_key(record)] = record

    def latest(self) -> list[AnalyticsRecord]:
        """The latest record of every stream seen, by kind then key."""
        return [self._latest[key] for key in sorted(self._latest)]
