"""Currency variants: a hand-computed example, merge order against a plain-Python reference,
batch-split invariance, rejects, checkpoints, FX tick files and variants files."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import msgspec
import numpy as np
import pytest

from engine.core.errors import ReferenceDataError, TickInputError
from engine.currency.translator import (
    CurrencyState,
    CurrencyTranslator,
    CurrencyVariant,
    FxColumns,
    FxRejectReason,
)
from engine.currency.variant_files import load_variants
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.fx_merge import CurrencySink, FxFeed
from engine.testing import TestingSink
from producers.fxfile import FxFileReader
from tests.support.currency import (
    CODES,
    HSI_USD,
    base_levels,
    fx_ticks,
    random_streams,
    reference,
    rows_of,
    translator,
)
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.seed import SEED
from tests.support.universes import universe_from_rows


def test_hand_computed_hsi_in_usd_through_the_pipeline() -> None:
    # HSI, previous close 25,800: A 100 x 1,000,000 x 1.0 = 100,000,000
    #                             B  50 x 2,000,000 x 0.5 =  50,000,000  -> divisor 5,813.95...
    # HSI_USD, previous close 3,315.3 at FX 0.1285 USD per HKD:
    #   divisor_usd = 0.1285 x 150,000,000 / 3,315.3
    # t=1000 A trades 101.5: cap 151,500,000, HSI = 25,800 x 1.01 = 26,058
    #   HSI_USD = 0.1285 x 151,500,000 / divisor_usd = 26,058 x 0.1285 = 3,348.453
    # t=2000 FX 0.1280:  HSI_USD = 0.1280 x 151,500,000 / divisor_usd = 26,058 x 0.1280 = 3,335.424
    rows = [RefRow("HSI", "A", 1e6, 1.0, None, 100.0), RefRow("HSI", "B", 2e6, 0.5, None, 50.0)]
    universe = universe_from_rows([RefIndex("HSI", 25800.0)], rows)
    translator = CurrencyTranslator([HSI_USD], universe.index_codes, [25800.0])
    out = TestingSink(translator.index_codes)
    sink = CurrencySink(translator, out, FxFeed([fx_ticks([2000], [0], [0.1280])]))
    pipeline = IndexPipeline(IndexCalculator(universe), sink)
    a = universe.security_id("A")
    pipeline.run([TickColumns(np.array([1000]), np.array([a]), np.array([101.5]))])
    sink.close()
    divisor_usd = 0.1285 * 150e6 / 3315.3
    assert 0.1280 * 151.5e6 / divisor_usd == pytest.approx(3335.424, rel=1e-14)
    got = rows_of(out.levels)
    assert [(ts, index, seq, security) for ts, index, _, seq, security in got] == [
        (1000, 0, 1, a),  # HSI
        (1000, 1, 1, a),  # HSI_USD moved by the tick of A
        (2000, 1, 2, -1),  # HSI_USD moved by the FX tick of pair 0
    ]
    assert [level for _, _, level, _, _ in got] == pytest.approx(
        [26058.0, 3348.453, 3335.424], rel=1e-14
    )
    codes = translator.level_security_codes(universe.securities)
    assert [codes[security] for *_, security in got] == ["A", "A", "HKDUSD"]
    assert translator.index_codes == ("HSI", "HSI_USD")


def test_variant_close_not_equal_to_base_close_times_fx() -> None:
    # a variant fixed at 3,300 (not 25,800 x 0.1285): level = 26,058 x 0.128/0.1285 x 3,300/25,800
    variant = CurrencyVariant("HSI_USD", "HSI", "USD", "HKD/usd", 3300.0, 0.1285)
    translator = CurrencyTranslator([variant], ["HSI"], [25800.0])
    # at equal times the FX tick comes first: 3,300 x 0.128/0.1285, then the base move
    out = translator.translate(base_levels([5], [0], [26058.0]), fx_ticks([5], [0], [0.128]))
    assert out.level.tolist() == pytest.approx(
        [3300.0 * 0.128 / 0.1285, 3300.0 * 1.01 * 0.128 / 0.1285], rel=1e-14
    )
    assert out.security.tolist() == [-1, 100] and out.seq.tolist() == [1, 2]
    assert translator.pairs == ("HKDUSD",)


@pytest.mark.parametrize("case", range(6))
def test_merge_matches_plain_python_reference(case: int) -> None:
    seed = SEED + case
    print(f"currency stream seed {seed}")
    rng = np.random.default_rng(seed)
    sizes = [(400, 150), (300, 0), (0, 200), (1, 1), (50, 500), (0, 0)][case]
    base, fx = random_streams(rng, *sizes)
    merged = rows_of(translator().translate_merged(base, fx))
    assert merged == reference(base, fx)
    variants_only = rows_of(translator().translate(base, fx))
    assert variants_only == [row for row in merged if row[1] >= len(CODES)]
    per_variant = {k: [seq for _, ix, _, seq, _ in merged if ix == k] for k in range(4, 9)}
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_variant.values())


def valid(fx: FxColumns) -> FxColumns:
    """The FX ticks a file reader would pass on (it skips bad rates and unknown pairs)."""
    return fx.take((fx.pair >= 0) & (fx.pair < 3) & (fx.rate > 0) & np.isfinite(fx.rate))


def test_batch_splits_do_not_change_the_stream() -> None:
    rng = np.random.default_rng(SEED)
    print(f"currency split seed {SEED}")
    base, fx = random_streams(rng, 600, 250)
    fx = valid(fx)
    whole = rows_of(translator().translate_merged(base, fx))
    for _ in range(5):
        base_cuts = np.unique(rng.integers(0, len(base), int(rng.integers(1, 30))))
        fx_cuts = np.unique(rng.integers(0, len(fx), int(rng.integers(1, 30))))
        fx_chunks = [fx.take(p) for p in np.split(np.arange(len(fx)), fx_cuts)]
        variants = translator()
        out = TestingSink(variants.index_codes)
        sink = CurrencySink(variants, out, FxFeed(fx_chunks))
        for part in np.split(np.arange(len(base)), base_cuts):
            sink.write(base.take(part))
        sink.close()
        assert rows_of(out.levels) == whole


def test_late_timestamps_count_at_their_stream_clock_across_batches() -> None:
    t = CurrencyTranslator([HSI_USD], ["HSI"], [25800.0])
    t.translate(base_levels([10], [0], [25900.0]), FxColumns.empty())
    # base at 5 counts at 10 (its stream's clock), so the FX tick at 7 comes first
    out = t.translate(base_levels([5], [0], [26000.0]), fx_ticks([7], [0], [0.1283]))
    assert out.ts_event.tolist() == [7, 5] and out.security.tolist() == [-1, 100]
    t = CurrencyTranslator([HSI_USD], ["HSI"], [25800.0])
    t.translate(LevelColumns.empty(), fx_ticks([30], [0], [0.1284]))
    # the FX tick at 22 counts at 30, so the base level at 25 comes first
    out = t.translate(base_levels([25], [0], [26000.0]), fx_ticks([22], [0], [0.1283]))
    assert out.ts_event.tolist() == [25, 22] and out.security.tolist() == [100, -1]


def test_rejected_fx_ticks_are_counted_and_change_nothing() -> None:
    fx = fx_ticks([1, 2, 3, 4, 5, 6], [0, 9, 0, -1, 0, 1], [0.13, 0.2, np.nan, 0.2, -0.1, 0.0])
    t = translator()
    out = t.translate(LevelColumns.empty(), fx)
    clean = translator().translate(LevelColumns.empty(), fx.take(np.array([0])))
    assert rows_of(out) == rows_of(clean)
    assert t.stats.fx_in == 6 and t.stats.fx_applied == 1
    assert t.stats.fx_rejected == {
        FxRejectReason.UNKNOWN_PAIR: 2,
        FxRejectReason.NON_FINITE_RATE: 1,
        FxRejectReason.NON_POSITIVE_RATE: 2,
    }


def test_absent_sides_and_carried_state() -> None:
    t = translator()
    assert len(t.translate(LevelColumns.empty(), FxColumns.empty())) == 0
    first = t.translate(base_levels([10], [0], [1010.0]), FxColumns.empty())  # rates at close
    assert rows_of(first) == [
        (10, 4, 1010.0 * 0.128 * (128.0 / 0.128 / 1000.0), 1, 100),
        (10, 5, 1010.0 * 0.92 * (930.0 / 0.92 / 1000.0), 1, 100),
    ]
    second = t.translate(LevelColumns.empty(), fx_ticks([11], [0], [0.125]))  # A and B in USD
    assert [(ix, seq) for _, ix, _, seq, _ in rows_of(second)] == [(4, 2), (6, 1)]
    assert second.level.tolist() == [
        1010.0 * 0.125 * (128.0 / 0.128 / 1000.0),
        2500.0 * 0.125 * (321.0 / 0.128 / 2500.0),
    ]
    assert len(t.translate(base_levels([12], [3], [9100.0]), FxColumns.empty())) == 0  # D


def test_checkpoint_round_trip_resumes_exactly() -> None:
    base, fx = random_streams(np.random.default_rng(SEED), 200, 80)
    fx = valid(fx)
    expected = rows_of(translator().translate(base, fx))
    half = int(base.ts_event[:100].max())  # cut both streams at the same clock time
    early = np.maximum.accumulate(fx.ts_event) <= half
    first = translator()
    part = rows_of(first.translate(base.take(np.arange(100)), fx.take(early)))
    blob = msgspec.msgpack.encode(first.snapshot())
    resumed = translator()
    resumed.restore(msgspec.msgpack.decode(blob, type=CurrencyState))
    rest = base.take(np.arange(100, len(base)))
    part += rows_of(resumed.translate(rest, fx.take(~early)))
    assert part == expected
    with pytest.raises(ValueError, match="does not fit"):
        CurrencyTranslator([HSI_USD], ["HSI"], [25800.0]).restore(first.snapshot())


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([HSI_USD, HSI_USD], "already used"),
        ([CurrencyVariant("HSI", "HSI", "USD", "HKDUSD", 1.0, 1.0)], "already used"),
        ([CurrencyVariant("X", "NOPE", "USD", "HKDUSD", 1.0, 1.0)], "unknown base index"),
        ([CurrencyVariant("X", "HSI", "USD", "HKDUSD", 1.0, math.nan)], "finite and positive"),
        ([HSI_USD, CurrencyVariant("X", "HSI", "USD", "HKDUSD", 1.0, 0.2)], "disagree"),
    ],
)
def test_translator_refuses_bad_definitions(variants: list[CurrencyVariant], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CurrencyTranslator(variants, ["HSI"], [25800.0])


def test_variants_file(tmp_path: Path) -> None:
    path = tmp_path / "variants.csv"
    path.write_text(
        "index,base_index,currency,fx_pair,prev_close_level,fx_prev_close,note\n"
        "HSI_USD,HSI,USD,HKD/USD,3315.3,0.1285,x\n\nHSCEI_CNY,HSCEI,cny,hkdcny,8418.0,0.92,\n"
    )
    assert load_variants(path, ["HSI", "HSCEI"]) == [
        HSI_USD,
        CurrencyVariant("HSCEI_CNY", "HSCEI", "CNY", "HKDCNY", 8418.0, 0.92),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("HSI_USD,HSI,USD,USDHKD,3315.3,0.1285", "2: fx_pair USDHKD must quote USD"),
        ("HSI_USD,NOPE,USD,HKDUSD,3315.3,0.1285", "2: unknown base_index NOPE"),
        ("HSI,HSI,USD,HKDUSD,3315.3,0.1285", "2: index HSI is already an index"),
        ("HSI_USD,HSI,USD,HKDUSD,-1,0.1285", "2: prev_close_level must be in "),
        ("HSI_USD,HSI,USD,HKDUSD,3315.3,abc", "2: fx_prev_close is not a number"),
        ("HSI_USD,HSI,,HKDUSD,3315.3,0.1285", "2: index, base_index, currency and fx_pair"),
        ("HSI_USD,HSI,USD,HKDUSD,3315.3,0.1285\nHSI_USD,HSI,USD,HKDUSD,1,1", "3: duplicate"),
    ],
)
def test_variants_file_errors_name_the_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "variants.csv"
    path.write_text("index,base_index,currency,fx_pair,prev_close_level,fx_prev_close\n" + row)
    with pytest.raises(ReferenceDataError, match=f"variants.csv:{message}"):
        load_variants(path, ["HSI"])


def read_fx(path: Path, chunk_bytes: int = 64) -> tuple[FxFileReader, FxColumns]:
    reader = FxFileReader(path, translator(), chunk_bytes=chunk_bytes)
    return reader, FxColumns.concat(list(reader))


def test_fx_csv_any_order_extra_columns_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "fx.csv"
    path.write_text(
        "source,rate,pair,ts\n"
        "ebs,0.1285,HKDUSD,1000\n"
        "ebs,0.92,hkd/cny,2026-11-20T09:30:00.5+08:00\n"
        "ebs,0.1,EURUSD,1002\n"
        "oops\n"
        "ebs,abc,HKDUSD,1003\n"
        "ebs,0,HKDEUR,1004\n"
        "ebs,0.118,HKDEUR,noon\n"
        "\n"
        "ebs,0.1286,HKDUSD,1005\n"
    )
    for chunk_bytes in (16, 1 << 20):
        reader, fx = read_fx(path, chunk_bytes)
        assert fx.ts_event.tolist() == [1000, 1_795_138_200_500_000_000, 1005]
        assert fx.pair.tolist() == [0, 1, 0]
        assert fx.rate.tolist() == [0.1285, 0.92, 0.1286]
        assert fx.origin is not None and fx.origin.tolist() == [2, 3, 10]
        assert reader.stats.rows == 8  # every non-blank data line
        assert reader.stats.used == 3
        assert reader.stats.unknown_pairs == {"EURUSD": 1}
        assert {":".join(e.split(":")[:3]) for e in reader.stats.log.summary()} == {
            f"{path}:4: unknown_pair",
            f"{path}:5: undecodable",
            f"{path}:6: non_finite_rate",
            f"{path}:7: non_positive_rate",
            f"{path}:8: bad_timestamp",
        }
        assert sum(reader.stats.skipped.values()) == 5


def test_fx_jsonl_gzipped_with_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "fx.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(
            b'{"ts": 1, "pair": "HKDUSD", "rate": 0.1285, "venue": "x"}\n'
            b'{"ts": "2026-11-20T01:30:00Z", "pair": "HKDEUR", "rate": "0.118"}\n'
            b'{"ts": 3, "pair": "HKDUSD"\n'
            b'{"ts": 4, "pair": "HKDCNY", "rate": -2}\n'
        )
    reader, fx = read_fx(path)
    assert fx.ts_event.tolist() == [1, 1_795_138_200_000_000_000]
    assert fx.pair.tolist() == [0, 2] and fx.rate.tolist() == [0.1285, 0.118]
    assert reader.stats.skipped == {
        FxRejectReason.UNDECODABLE: 1,
        FxRejectReason.NON_POSITIVE_RATE: 1,
    }
    assert reader.stats.log.summary()[0].startswith(f"{path}:3: undecodable")


def test_fx_file_errors(tmp_path: Path) -> None:
    bad_header = tmp_path / "fx.csv"
    bad_header.write_text("time,ccy,px\n1,HKDUSD,0.1\n")
    with pytest.raises(TickInputError, match=r"fx.csv:1: header lacks ts,pair,rate"):
        list(FxFileReader(bad_header, translator()))
    with pytest.raises(TickInputError, match="unknown FX file type"):
        FxFileReader(tmp_path / "fx.parquet", translator())
    with pytest.raises(TickInputError, match="cannot open"):
        FxFileReader(tmp_path / "none.csv", translator())


def test_fx_feed_hands_out_time_prefixes() -> None:
    chunks = [fx_ticks([1, 3, 3], [0, 0, 1], [0.1] * 3), fx_ticks([2, 7], [1, 0], [0.2, 0.3])]
    feed = FxFeed(chunks)
    assert feed.take_until(0).ts_event.tolist() == []
    assert feed.take_until(3).ts_event.tolist() == [1, 3, 3, 2]  # 2 after 3: clock 3
    assert feed.take_until(1).ts_event.tolist() == []  # never back in time
    assert feed.take_until(6).ts_event.tolist() == []
    assert feed.rest().ts_event.tolist() == [7]
    assert len(feed.rest()) == 0
