"""Dead letters: rejected ticks and undecodable messages, with reason and source.

A dead letter always fits the broker, whatever the input: it carries the original key and value
only up to a size (``max_bytes``, by default ``DEAD_LETTER_MAX_BYTES``, far below Kafka's 1 MiB
``max.message.bytes``), the original size and SHA-256 always, and short error details.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from engine.kernel.calculator import IndexCalculator, WithheldLevel
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.live.codec import DecodedFetch, OutgoingMessage, Record, source_of
from engine.live.config import DEAD_LETTER_MAX_BYTES as DEAD_LETTER_MAX_BYTES  # noqa: PLC0414
from engine.live.config import MIN_DEAD_LETTER_BYTES
from engine.live.metrics import NONFINITE_LEVEL

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
"""Keys longer than this are cut (``tickindex.original_key_size`` tells by how much)."""
MAX_DETAIL_BYTES = 1024
"""``tickindex.error`` is cut to this many bytes (decoder errors may quote the input)."""
_RECORD_OVERHEAD = 64
_HEADER_OVERHEAD = 8


def reject_counts(reasons: NDArray[np.uint8], undecodable: list[RejectReason]) -> dict[str, int]:
    """Rejected ticks per reason label for one batch (``undecodable``: one reason per message)."""
    counts: dict[str, int] = {}
    for reason in undecodable:
        counts[reason.label] = counts.get(reason.label, 0) + 1
    if reasons.size:  # most batches reject nothing
        totals = np.bincount(reasons)
        for code in np.flatnonzero(totals).tolist():
            label = RejectReason(code).label
            counts[label] = counts.get(label, 0) + int(totals[code])
    return counts


def fetch_dead_letters(
    fetch: DecodedFetch,
    rejected: TickColumns,
    reasons: NDArray[np.uint8],
    counts: dict[str, int],
    topic: str,
    *,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> list[OutgoingMessage]:
    """``dead_letters`` of one fetch, logged once with the counts and the first source."""
    letters = dead_letters(fetch, rejected, reasons, topic, max_bytes=max_bytes)
    if fetch.undecodable:
        first = fetch.records[fetch.undecodable[0].position]
    else:
        assert rejected.origin is not None
        first = fetch.records[int(fetch.message[rejected.origin[0]])]
    log.warning(
        "dead-lettered %d ticks (%s), first from %s",
        len(letters),
        ", ".join(f"{k}={v}" for k, v in sorted(counts.items())),
        source_of(first),
    )
    return letters


def dead_letters(
    fetch: DecodedFetch,
    rejected: TickColumns,
    reasons: NDArray[np.uint8],
    topic: str,
    *,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> list[OutgoingMessage]:
    """Dead-letter messages: the original bytes and key, with reason and source in headers.

    One message per undecodable record and per rejected tick (a ``tick_batch`` message with
    several bad ticks is written once per bad tick, with its position in the batch).
    """
    out = [
        dead_letter(
            fetch.records[bad.position], topic, bad.reason, bad.detail, bad.batch_position,
            max_bytes=max_bytes,
        )
        for bad in fetch.undecodable
    ]  # fmt: skip
    if len(rejected) == 0 or rejected.origin is None:
        return out
    rows = rejected.origin
    for record_at, within, reason, price in zip(
        fetch.message[rows].tolist(),
        fetch.position_in_message[rows].tolist(),
        reasons.tolist(),
        rejected.price.tolist(),
        strict=True,
    ):
        label = RejectReason(reason)
        detail = f"{label.label}: price {price!r}"
        position = None if within < 0 else within
        record = fetch.records[record_at]
        out.append(dead_letter(record, topic, label, detail, position, max_bytes=max_bytes))
    return out


def _cut(text: str, limit: int) -> bytes:
    """``text`` as UTF-8 (unencodable characters escaped), at most ``limit`` bytes."""
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode()


def dead_letter(
    record: Record,
    topic: str,
    reason: RejectReason | str,
    detail: str,
    position: int | None = None,
    *,
    max_bytes: int = DEAD_LETTER_MAX_BYTES,
) -> OutgoingMessage:
    """A dead letter for ``record``: its key and bytes, reason and source in headers.

    Parameters
    ----------
    record : Record
        The rejected message.
    topic : str
        The dead-letter topic.
    reason : RejectReason or str
        Why: a tick ``RejectReason`` (its ``label`` is used) or a label of its own (FX ticks
        use ``fx_<FxRejectReason.label>``).
    detail : str
        Human-readable error; cut to ``MAX_DETAIL_BYTES``.
    position : int, optional
        Place of the bad item inside a batch message.
    max_bytes : int
        Bound of the whole record (key, value, headers); at least ``MIN_DEAD_LETTER_BYTES``.

    Returns
    -------
    OutgoingMessage
        Headers ``tickindex.reason``, ``.error``, ``.source`` (``topic[partition]@offset``),
        ``.source_topic``, ``.source_partition``, ``.source_offset``, ``.original_size`` and
        ``.original_sha256`` (of the value), optionally ``.batch_position``; when the value had
        to be cut to fit, ``tickindex.truncated`` = ``true``, and when the key was,
        ``tickindex.original_key_size``.
    """
    if max_bytes < MIN_DEAD_LETTER_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_DEAD_LETTER_BYTES}")
    label = reason if isinstance(reason, str) else reason.label
    value, key = record.value or b"", record.key
    headers = [
        ("tickindex.reason", _cut(label, 128)),
        ("tickindex.error", _cut(detail, MAX_DETAIL_BYTES)),
        ("tickindex.source", _cut(source_of(record), 512)),
        ("tickindex.source_topic", _cut(record.topic, 256)),
        ("tickindex.source_partition", str(record.partition).encode()),
        ("tickindex.source_offset", str(record.offset).encode()),
        ("tickindex.original_size", str(len(value)).encode()),
        ("tickindex.original_sha256", hashlib.sha256(value).hexdigest().encode()),
    ]
    if position is not None:
        headers.append(("tickindex.batch_position", str(position).encode()))
    if key is not None and len(key) > MAX_KEY_BYTES:
        headers.append(("tickindex.original_key_size", str(len(key)).encode()))
        key = key[:MAX_KEY_BYTES]
    truncated = ("tickindex.truncated", b"true")
    room = max_bytes - record_size(OutgoingMessage(topic, key, b"", [*headers, truncated]))
    if len(value) > room:
        value = value[:room]
        headers.append(truncated)
    return OutgoingMessage(topic, key, value, headers)


def record_size(message: OutgoingMessage) -> int:
    """Bytes ``dead_letter`` counts for a message against its ``max_bytes``."""
    headers = sum(len(n) + len(v) + _HEADER_OVERHEAD for n, v in message.headers)
    return _RECORD_OVERHEAD + len(message.key or b"") + len(message.value) + headers


def nonfinite_dead_letters(
    withheld: Sequence[WithheldLevel],
    index_codes: Sequence[str],
    security_codes: Sequence[str],
    topic: str,
) -> list[OutgoingMessage]:
    """One dead letter per index with levels withheld as NaN or infinite, keyed by index code.

    Reason ``nonfinite_level``; the value is JSON: the index, how many levels were withheld and
    the first of them (tick time when known, security, price, the level as ``nan``/``inf``).
    """
    first: dict[int, WithheldLevel] = {}
    count: dict[int, int] = {}
    for level in withheld:
        first.setdefault(level.index, level)
        count[level.index] = count.get(level.index, 0) + 1
    out = []
    for index, level in first.items():
        code = index_codes[index]
        what = {
            "index": code,
            "withheld": count[index],
            "ts_event": level.ts_event,
            "security": security_codes[level.security],
            "price": level.price,
            "level": repr(level.value),
        }
        detail = f"{code}: level {level.value!r} after a tick of {what['security']}"
        headers = [
            ("tickindex.reason", b"nonfinite_level"),
            ("tickindex.error", _cut(detail, MAX_DETAIL_BYTES)),
        ]
        value = json.dumps(what).encode()
        out.append(OutgoingMessage(topic, _cut(code, MAX_KEY_BYTES), value, headers))
    return out


class LevelCounts(Protocol):
    """The counters ``withheld_level_letters`` updates (``ServiceMetrics`` has them)."""

    def record_dead_letters(self, by_reason: Mapping[str, int]) -> None: ...
    def record_nonfinite_levels(self, by_index: Mapping[str, int]) -> None: ...


def withheld_level_letters(
    calculator: IndexCalculator, metrics: LevelCounts, topic: str
) -> list[OutgoingMessage]:
    """Count, log and dead-letter the levels ``calculator`` withheld since the last call.

    ``tickindex_nonfinite_levels_total{index}`` counts every withheld level; one
    ``nonfinite_dead_letters`` message per index is returned (and counted).
    """
    withheld = calculator.take_withheld()
    if not withheld:
        return []
    universe = calculator.universe
    letters = nonfinite_dead_letters(withheld, universe.index_codes, universe.securities, topic)
    by_index = Counter(universe.index_codes[level.index] for level in withheld)
    log.error("withheld non-finite levels (kept the last good ones): %s", dict(by_index))
    metrics.record_nonfinite_levels(by_index)
    metrics.record_dead_letters({NONFINITE_LEVEL: len(letters)})
    return letters


OWN_LETTER_REASONS = frozenset({RejectReason.INVALID_EVENT.label, NONFINITE_LEVEL})
"""Dead letters one shard of several writes for its own indices (control events, its levels);
every other reason is about input all shards see alike (``is_shared_input_letter``)."""


def is_shared_input_letter(message: OutgoingMessage, dead_letter_topic: str) -> bool:
    """Whether ``message`` dead-letters input every shard sees alike (a tick, an FX tick).

    With several shards, only one of them writes those (``engine.live.shards.LETTER_WRITER``),
    so a bad tick is dead-lettered once; the others count it only.
    """
    if message.topic != dead_letter_topic:
        return False
    reason = dict(message.headers).get("tickindex.reason", b"").decode(errors="replace")
    return reason not in OWN_LETTER_REASONS
