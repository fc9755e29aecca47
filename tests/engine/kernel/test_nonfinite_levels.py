"""No level is ever NaN or infinite: the engine withholds it, keeps the last good one, counts it."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from engine.currency.translator import CurrencyTranslator, CurrencyVariant, FxColumns
from engine.kernel.calculator import IndexCalculator, LevelUpdates
from engine.kernel.columns import LevelColumns
from engine.live.dead_letters import nonfinite_dead_letters, withheld_level_letters
from engine.live.fx import FxChannel
from engine.refdata.builtin import load_builtin_universe
from engine.wire import FxTick, WireCodec
from tests.support.live import InProcessService, LiveTopics
from tests.support.records import FakeRecord
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.universes import universe_from_rows

# Two securities of 1e6 shares at 10 in an index at 1000: level weight 50 each.
INDICES = [RefIndex("IX", 1000.0), RefIndex("OTHER", 500.0)]
ROWS = [
    RefRow("IX", "A", 1e6, 1.0, 1.0, 10.0),
    RefRow("IX", "B", 1e6, 1.0, 1.0, 10.0),
    RefRow("OTHER", "B", 1e6, 1.0, 1.0, 10.0),
]
SECURITY = [0, 0, 1, 0, 1]
PRICE = [11.0, 1e308, 12.0, 20.0, 13.0]  # 1e308 x 50 overflows until A trades at 20 again
TS = [101, 102, 103, 104, 105]


def run(cuts: list[int]) -> tuple[IndexCalculator, LevelUpdates]:
    calculator = IndexCalculator(universe_from_rows(INDICES, ROWS))
    parts = []
    bounds = [0, *cuts, len(SECURITY)]
    for lo, hi in itertools.pairwise(bounds):
        updates = calculator.apply(SECURITY[lo:hi], PRICE[lo:hi], TS[lo:hi])
        parts.append((lo, updates))
    return calculator, LevelUpdates.concat([replace(u, tick=u.tick + lo) for lo, u in parts])


def rows(updates: LevelUpdates) -> list[tuple[int, int, float, int]]:
    columns = (updates.tick, updates.index, updates.level, updates.seq)
    return list(zip(*(c.tolist() for c in columns), strict=True))


def test_nonfinite_levels_are_withheld_and_the_index_recovers() -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        calculator, updates = run([])

    assert rows(updates) == [
        (0, 0, 1050.0, 1),
        (2, 0 + 1, 600.0, 1),  # OTHER: B at 12 (its own level stays finite)
        (3, 0, 1600.0, 2),  # IX: exact again once A is back at 20, seq without gap
        (4, 0, 1650.0, 3),
        (4, 1, 650.0, 2),
    ]
    assert calculator.nonfinite_levels == 2
    withheld = calculator.take_withheld()
    assert [(w.index, w.security, w.tick, w.ts_event) for w in withheld] == [
        (0, 0, 1, 102),
        (0, 1, 2, 103),
    ]
    assert math.isinf(withheld[0].value) and withheld[0].price == 1e308
    assert calculator.take_withheld() == []
    assert calculator.seq.tolist() == [3, 2]
    assert np.isfinite(calculator.published_levels).all()


@pytest.mark.parametrize("cuts", [[1], [2], [3], [1, 2, 3, 4], [2, 4]])
def test_withholding_does_not_depend_on_batch_boundaries(cuts: list[int]) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        _, whole = run([])
        calculator, parts = run(cuts)
    assert rows(parts) == rows(whole)
    assert calculator.nonfinite_levels == 2


def test_the_last_good_level_is_kept_while_levels_are_withheld() -> None:
    calculator = IndexCalculator(universe_from_rows(INDICES, ROWS))
    with np.errstate(over="ignore", invalid="ignore"):
        calculator.apply([0], [11.0])
        assert calculator.apply([0], [1e308]).level.size == 0
        assert calculator.apply([1], [12.0]).index.tolist() == [1]
    assert calculator.published_levels.tolist() == [1050.0, 600.0]
    assert not math.isfinite(calculator.levels[0])  # the running state, recomputed next tick
    with np.errstate(over="ignore", invalid="ignore"):
        assert calculator.apply([0], [20.0]).level.tolist() == [1600.0]
    assert calculator.published_levels.tolist() == [1600.0, 600.0]


def test_currency_variants_withhold_nonfinite_levels() -> None:
    variant = CurrencyVariant("IX_BIG", "IX", "BIG", "ABCXYZ", 1e300, 1.0)
    translator = CurrencyTranslator([variant], ["IX"], [1.0])
    base = LevelColumns(
        ts_event=np.array([1, 2, 3], dtype=np.int64),
        index=np.zeros(3, dtype=np.int32),
        level=np.array([1.0, 1e9, 2.0]),
        seq=np.array([1, 2, 3], dtype=np.int64),
        security=np.zeros(3, dtype=np.int64),
    )
    with np.errstate(over="ignore"):
        levels = translator.translate(base, FxColumns.empty())
    assert levels.level.tolist() == [1e300, 2e300]
    assert levels.seq.tolist() == [1, 2]
    assert levels.ts_event.tolist() == [1, 3]
    assert translator.stats.nonfinite_levels == {"IX_BIG": 1}
    assert translator.take_nonfinite() == {"IX_BIG": 1}
    assert translator.take_nonfinite() == {}


def test_the_service_counts_logs_and_dead_letters_withheld_levels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    universe = load_builtin_universe()
    config = LiveTopics.unique("nonfinite").config("127.0.0.1:1")
    live = InProcessService(config, universe)
    calculator, topic = live.service.calculator, config.dead_letter_topic
    security = int(np.argmax(np.bincount(universe.membership.security)))
    with np.errstate(over="ignore", invalid="ignore"):
        calculator.apply([security], [1.7e308], [77])
    letters = withheld_level_letters(calculator, live.service.metrics, topic)
    members = {
        universe.index_codes[i]
        for i in universe.membership.index[universe.membership.security == security].tolist()
    }

    assert letters, "the tick should have overflowed at least one index"
    assert {letter.key.decode() for letter in letters if letter.key} <= members
    assert sum(json.loads(letter.value)["withheld"] for letter in letters) == (
        calculator.nonfinite_levels
    )
    for letter in letters:
        assert letter.topic == config.dead_letter_topic
        assert dict(letter.headers)["tickindex.reason"] == b"nonfinite_level"
        body = json.loads(letter.value)
        assert body["index"] == letter.key.decode() if letter.key else False
        assert (body["ts_event"], body["security"], body["price"]) == (
            77, universe.securities[security], 1.7e308
        )  # fmt: skip
        assert body["level"] in ("inf", "-inf", "nan")
        count = live.sample("tickindex_nonfinite_levels_total", index=body["index"])
        assert count == body["withheld"] == 1
    assert live.sample("tickindex_dead_letters_total", reason="nonfinite_level") == len(letters)
    assert "withheld non-finite levels" in caplog.text
    assert withheld_level_letters(calculator, live.service.metrics, topic) == []


def test_nonfinite_dead_letters_are_one_per_index() -> None:
    calculator = IndexCalculator(universe_from_rows(INDICES, ROWS))
    with np.errstate(over="ignore", invalid="ignore"):
        calculator.apply([0, 1, 1], [1e308, 11.0, 12.0])
    letters = nonfinite_dead_letters(calculator.take_withheld(), ["IX", "OTHER"], ["A", "B"], "d")
    assert [(m.key, json.loads(m.value)["withheld"]) for m in letters] == [(b"IX", 3)]


class _NoLag:
    def highwater(self, partition: object) -> None:
        return None


def test_the_service_counts_withheld_variant_levels(caplog: pytest.LogCaptureFixture) -> None:
    universe = load_builtin_universe()
    config = LiveTopics.unique("nonfinite-fx").config("127.0.0.1:1")
    live = InProcessService(config, universe)
    closes = [spec.prev_close_level for spec in universe.indices]
    variant = CurrencyVariant("HSI_BIG", "HSI", "BIG", "HKDBIG", 1e300, 1.0)
    translator = CurrencyTranslator([variant], universe.index_codes, closes)
    live.service.work.fx = FxChannel(translator, WireCodec("json"), config.dead_letter_topic)
    live.service._consumer = _NoLag()
    fx_tick = WireCodec("json").encode(FxTick("HKDBIG", 1e9, 1_795_138_200_000_000_000))
    record = FakeRecord(config.fx_topic, 0, 0, None, fx_tick)

    with np.errstate(over="ignore"):
        levels, _ = live.service._process({config.fx_topic: [record]})

    assert np.isfinite(levels.level).all()
    assert live.sample("tickindex_nonfinite_levels_total", index="HSI_BIG") == 1
    assert "withheld non-finite variant levels" in caplog.text
