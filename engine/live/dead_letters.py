"""Dead letters: rejected ticks and undecodable messages, with reason and source."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from engine.columns import TickColumns
from engine.live.codec import DecodedFetch, OutgoingMessage, Record, source_of
from engine.screening import RejectReason

log = logging.getLogger(__name__)


def reject_counts(reasons: NDArray[np.uint8], undecodable: int) -> dict[str, int]:
    """Rejected ticks per reason label for one batch."""
    counts = {RejectReason.UNDECODABLE.label: undecodable} if undecodable else {}
    codes, totals = np.unique(reasons, return_counts=True)
    for code, total in zip(codes.tolist(), totals.tolist(), strict=True):
        counts[RejectReason(code).label] = total
    return counts


def fetch_dead_letters(
    fetch: DecodedFetch,
    rejected: TickColumns,
    reasons: NDArray[np.uint8],
    counts: dict[str, int],
    topic: str,
) -> list[OutgoingMessage]:
    """``dead_letters`` of one fetch, logged once with the counts and the first source."""
    letters = dead_letters(fetch, rejected, reasons, topic)
    if fetch.undecodable:
        first = fetch.records[fetch.undecodable[0][0]]
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
) -> list[OutgoingMessage]:
    """Dead-letter messages: the original bytes and key, with reason and source in headers.

    One message per undecodable record and per rejected tick (a ``tick_batch`` message with
    several bad ticks is written once per bad tick, with its position in the batch).
    """
    out = [
        dead_letter(fetch.records[position], topic, RejectReason.UNDECODABLE, detail, None)
        for position, detail in fetch.undecodable
    ]
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
        out.append(dead_letter(fetch.records[record_at], topic, label, detail, position))
    return out


def dead_letter(
    record: Record,
    topic: str,
    reason: RejectReason | str,
    detail: str,
    position: int | None = None,
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
        Human-readable error.
    position : int, optional
        Place of the bad item inside a batch message.

    Returns
    -------
    OutgoingMessage
    """
    label = reason if isinstance(reason, str) else reason.label
    headers = [
        ("tickindex.reason", label.encode()),
        ("tickindex.error", detail.encode()),
        ("tickindex.source", source_of(record).encode()),
        ("tickindex.source_topic", record.topic.encode()),
        ("tickindex.source_partition", str(record.partition).encode()),
        ("tickindex.source_offset", str(record.offset).encode()),
    ]
    if position is not None:
        headers.append(("tickindex.batch_position", str(position).encode()))
    return OutgoingMessage(topic, record.key, record.value or b"", headers)
