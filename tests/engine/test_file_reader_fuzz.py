"""Property-based tests: every file reader and the config loader, on any input, either give a
valid value or raise the project's own error (``TickIndexError``), never another exception."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.calendar.sessions import TradingCalendar
from engine.core.errors import InputFileError, ReferenceDataError, TickIndexError
from engine.currency.translator import CurrencyTranslator, CurrencyVariant
from engine.currency.variant_files import load_variants
from engine.live.config import ConfigError, ServiceConfig, load_config
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe
from producers.fxfile import FxFileReader
from producers.tickfile import TickFileReader
from tests.support.malformed_corpus import (
    CALENDAR,
    COMPOSITION,
    INDICES,
    VARIANTS,
    write_valid_files,
)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_names = itertools.count()

NASTY_CELLS = st.sampled_from(
    [
        "", "0", "-1", "1e308", "1e400", "inf", "-inf", "nan", "NaN", str(2**63), str(2**64),
        str(-(2**63)), "9" * 400, "2026-11-20T09:30:00+08:00", "2026-11-20T09:30:00",
        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "AAA", "BBB", "CCC", "ZZZ",
        "HKDUSD", "hkd/usd", "EURUSD", "0.1285", "10.5", '"', '"a,b"', "\x00", "\x0b", "\r",
        "\u2028", "é", "\ufeff", "[" * 50,
    ]
)  # fmt: skip
CELLS = st.one_of(NASTY_CELLS, st.text(max_size=12), st.integers().map(str), st.floats().map(str))
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), NASTY_CELLS
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@st.composite
def csv_text(draw: st.DrawFn, header: tuple[str, ...]) -> bytes:
    """A header (sometimes damaged) and rows of nasty cells, sometimes with raw junk bytes."""
    names = list(draw(st.permutations([*header, "extra"])))
    if draw(st.booleans()):
        names = names[: draw(st.integers(0, len(names)))]
    row = st.lists(CELLS, min_size=1, max_size=len(names) + 2).map(",".join)
    lines = [",".join(names), *draw(st.lists(row, max_size=8))]
    data = ("\r\n" if draw(st.booleans()) else "\n").join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=12)) + data[at:]
    return data


@st.composite
def jsonl_text(draw: st.DrawFn, keys: tuple[str, ...]) -> bytes:
    """Objects with the keys (sometimes missing, sometimes of any type), and junk lines."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.binary(max_size=20)))
        elif kind == 1:
            lines.append(b"[" * 2000 + b"]" * 2000)
        else:
            chosen = draw(st.lists(st.sampled_from(keys), unique=True, min_size=kind > 3))
            record = {key: draw(st.one_of(JSON_VALUES, CELLS)) for key in chosen}
            lines.append(json.dumps(record).encode())
    return b"\n".join(lines)


@st.composite
def packed(draw: st.DrawFn, content: bytes, suffix: str) -> tuple[bytes, str]:
    """The content as ``suffix`` or gzipped (sometimes truncated or not gzip at all)."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return content, suffix
    whole = gzip.compress(content, mtime=0)
    if choice == 2:
        whole = whole[: draw(st.integers(0, len(whole)))]
    if choice == 3:
        whole = content
    return whole, suffix + ".gz"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def universe(folder: Path) -> Universe:
    files = write_valid_files(folder / "valid")
    return load_universe(files["indices"], files["composition"])


def write(folder: Path, content: bytes, suffix: str) -> Path:
    path = folder / f"f{next(_names)}{suffix}"
    path.write_bytes(content)
    return path


@st.composite
def tick_file(draw: st.DrawFn) -> tuple[bytes, str]:
    if draw(st.booleans()):
        return draw(packed(draw(csv_text(("ts", "security", "price"))), ".csv"))
    return draw(packed(draw(jsonl_text(("ts", "security", "price"))), ".jsonl"))


@pytest.mark.slow
@FUZZ
@given(data=st.data(), strict=st.booleans())
def test_tick_reader_gives_valid_ticks_or_its_own_error(
    folder: Path, universe: Universe, data: st.DataObject, strict: bool
) -> None:
    content, suffix = data.draw(tick_file())
    reader = TickFileReader(write(folder, content, suffix), universe, chunk_bytes=64, strict=strict)
    try:
        batches = list(reader)
    except InputFileError:
        return
    for batch in batches:
        assert (batch.ts_event >= 0).all()
        assert ((batch.security >= 0) & (batch.security < len(universe.securities))).all()
        assert (np.isfinite(batch.price) & (batch.price > 0)).all()
    used = sum(len(batch) for batch in batches)
    assert reader.stats.used == used
    assert reader.stats.rows == used + sum(reader.stats.skipped.values())
    assert not (strict and reader.stats.skipped)


def translator() -> CurrencyTranslator:
    variant = CurrencyVariant("IDX_USD", "IDX", "USD", "HKDUSD", 128.5, 0.1285)
    return CurrencyTranslator([variant], ("IDX", "CAP"), [1000.0, 500.0])


@pytest.mark.slow
@FUZZ
@given(data=st.data(), strict=st.booleans())
def test_fx_reader_gives_valid_rates_or_its_own_error(
    folder: Path, data: st.DataObject, strict: bool
) -> None:
    if data.draw(st.booleans()):
        content, suffix = data.draw(packed(data.draw(csv_text(("ts", "pair", "rate"))), ".csv"))
    else:
        content, suffix = data.draw(packed(data.draw(jsonl_text(("ts", "pair", "rate"))), ".jsonl"))
    path = write(folder, content, suffix)
    reader = FxFileReader(path, translator(), chunk_bytes=64, strict=strict)
    try:
        batches = list(reader)
    except InputFileError:
        return
    used = sum(len(batch) for batch in batches)
    for batch in batches:
        assert (batch.ts_event >= 0).all() and (batch.pair >= 0).all()
        assert (np.isfinite(batch.rate) & (batch.rate > 0)).all()
    assert reader.stats.rows == used + sum(reader.stats.skipped.values())


@st.composite
def mutated(draw: st.DrawFn, text: str) -> bytes:
    """A valid reference file with cells replaced, cells added or junk bytes inserted."""
    lines = [line.split(",") for line in text.splitlines()]
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.integers(0, len(lines) - 1))
        cells = lines[row]
        if draw(st.booleans()):
            cells[draw(st.integers(0, len(cells) - 1))] = draw(CELLS)
        else:
            cells.append(draw(CELLS))
    data = "\n".join(",".join(cells) for cells in lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data


@FUZZ
@given(data=st.data())
def test_universe_files_load_or_name_file_and_line(folder: Path, data: st.DataObject) -> None:
    indices = write(folder, data.draw(mutated(INDICES)), ".csv")
    composition = write(folder, data.draw(mutated(COMPOSITION)), ".csv")
    try:
        universe = load_universe(indices, composition)
    except ReferenceDataError as exc:
        assert exc.path in (str(indices), str(composition))
        return
    assert np.isfinite(universe.prev_close).all() and (universe.prev_close > 0).all()
    assert (universe.membership.faf > 0).all() and (universe.membership.faf <= 1).all()


@FUZZ
@given(data=st.data())
def test_calendar_and_variants_load_or_name_the_file(folder: Path, data: st.DataObject) -> None:
    calendar = write(folder, data.draw(mutated(CALENDAR)), ".csv")
    try:
        TradingCalendar.from_csv(calendar)
    except ReferenceDataError as exc:
        assert exc.path == str(calendar)
    variants = write(folder, data.draw(mutated(VARIANTS)), ".csv")
    try:
        loaded = load_variants(variants, ["IDX", "CAP"])
    except ReferenceDataError as exc:
        assert exc.path == str(variants)
        return
    for variant in loaded:
        assert 0 < variant.prev_close_level <= 1e12 and 0 < variant.fx_prev_close <= 1e12


SETTING_NAMES = st.sampled_from(sorted(ServiceConfig.__struct_fields__)) | st.text(max_size=10)


@FUZZ
@given(
    data=st.data(),
    suffix=st.sampled_from([".toml", ".json"]),
    env=st.dictionaries(
        SETTING_NAMES.map(lambda name: "TICKINDEX_" + name.upper()), CELLS, max_size=4
    ),
)
def test_config_loader_gives_a_config_or_a_config_error(
    folder: Path, data: st.DataObject, suffix: str, env: dict[str, str]
) -> None:
    settings_map = data.draw(st.dictionaries(SETTING_NAMES, JSON_VALUES, max_size=4))
    if suffix == ".json":
        content = json.dumps(settings_map).encode()
    else:
        content = "\n".join(
            f"{name} = {json.dumps(value)}" for name, value in settings_map.items()
        ).encode()
    if data.draw(st.booleans()):
        choice = data.draw(st.integers(0, 2))
        content = [b"[" * 5000, b"\xff\xfe", b"x = " + b"9" * 5000][choice] + content
    path = write(folder, content, suffix)
    try:
        config = load_config(path, env=env)
    except ConfigError:
        return
    assert isinstance(config, ServiceConfig)


def test_own_errors_are_tickindex_errors() -> None:
    assert issubclass(InputFileError, TickIndexError)
    assert issubclass(ConfigError, TickIndexError)
