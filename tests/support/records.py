"""Fetched records and tick messages made by hand, for tests of decoding and screening."""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.refdata.builtin import load_builtin_universe

UNIVERSE = load_builtin_universe()
CODE = UNIVERSE.securities[0]
TS = 1_795_138_200_000_000_000


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def records(values: list[bytes | None], key: bytes | None = None) -> list[FakeRecord]:
    return [FakeRecord("ticks", 0, 10 + i, key, v) for i, v in enumerate(values)]


def tick_json(**fields: object) -> bytes:
    body = {"type": "tick", "security": CODE, "price": 10.0, "ts_event": TS} | fields
    return json.dumps(body).encode()


GOOD = tick_json()
