"""Event-time parsing: integer nanoseconds since the epoch, or ISO-8601 with a UTC offset."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

BAD_TIMESTAMP = np.iinfo(np.int64).min
_INT64_MAX = int(np.iinfo(np.int64).max)

_FRACTION = re.compile(r"(\.\d+)")


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch from ``text``.

    Parameters
    ----------
    text : str
        An integer (nanoseconds) or ISO-8601 date-time with an offset (``Z`` or ``+08:00``),
        fractional seconds up to nanoseconds.

    Raises
    ------
    ValueError
        When the text is neither, or the date-time has no offset (its instant is unknown).
    """
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    fraction_ns = 0
    match = _FRACTION.search(text)
    if match:
        digits = match.group(1)[1:]
        fraction_ns = int(digits[:9].ljust(9, "0"))
        text = text[: match.start()] + text[match.end() :]
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    whole_seconds = int(moment.timestamp())
    return whole_seconds * 1_000_000_000 + fraction_ns


def parse_timestamps(values: Sequence[str | int]) -> NDArray[np.int64]:
    """Vectorised ``parse_timestamp``; unparseable values become ``BAD_TIMESTAMP``.

    Integer columns convert in one numpy call; ISO strings are parsed once per distinct value.
    Values outside int64 are ``BAD_TIMESTAMP`` too.
    """
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError, TypeError):
        pass
    parsed: dict[str | int, int] = {}
    out = np.empty(len(values), dtype=np.int64)
    for position, value in enumerate(values):
        if value not in parsed:
            try:
                stamp = value if isinstance(value, int) else parse_timestamp(value)
            except (ValueError, OverflowError):
                stamp = BAD_TIMESTAMP
            parsed[value] = stamp if -_INT64_MAX <= stamp <= _INT64_MAX else BAD_TIMESTAMP
        out[position] = parsed[value]
    return out
