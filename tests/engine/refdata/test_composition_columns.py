"""The column reader of composition files: the row reader's result, or None for a bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.refdata import composition_columns
from engine.refdata.composition_columns import CompositionTable, read_composition_columns
from engine.refdata.reference_files import _read_composition, _read_indices, load_universe
from engine.refdata.universe import build_universe, rows_by_index
from tests.support.reference_files import (
    BAD_FILES,
    COMPOSITION,
    INDICES,
    replace_line,
    write,
)

INDICES_WITH_RETURN = INDICES.replace("weight_cap\n", "weight_cap,return_type,underlying\n") + (
    "CAP_GTR,Capped Gross,5000,,gross,CAP\n"
)

# Layouts the column reader must accept, each read as the row reader reads it.
LAYOUTS = {
    "plain": COMPOSITION,
    "crlf": COMPOSITION.replace("\n", "\r\n"),
    "quoted cells": COMPOSITION.replace("HSI,0005.HK", '"HSI","0005.HK"'),
    "blank lines": COMPOSITION.replace("CAP,A,", "\n\nCAP,A,") + "\n\n",
    "spaces around cells": COMPOSITION.replace(",", " , "),
    "unicode spaces": COMPOSITION.replace("CAP,A,", "CAP,\u00a0A\u2003,").replace(
        ",30\n", ",30\t\n"
    ),
    "codes in any script": COMPOSITION.replace("0941.HK", "\u9999\u6e2f0941").replace(",B,", ",b,"),
    "extra column, ragged": COMPOSITION.replace("prev_close\n", "prev_close,note\n").replace(
        "CAP,B,1000000,1.0,,30", "CAP,B,1000000,1.0,,30,review"
    ),
    "extra column, every row": COMPOSITION.replace("prev_close\n", "prev_close,note\n").replace(
        "\n", ",x\n"
    ),
}


def assert_same_table(fast: CompositionTable, rows: CompositionTable) -> None:
    assert fast.securities == rows.securities
    np.testing.assert_array_equal(fast.prev_close, rows.prev_close)
    for name in ("index", "security", "issued_shares", "faf", "cap_factor"):
        got, expected = getattr(fast.membership, name), getattr(rows.membership, name)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("composition", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_column_reader_gives_the_row_readers_table(tmp_path: Path, composition: str) -> None:
    indices_path, composition_path = write(tmp_path, INDICES_WITH_RETURN, composition)
    specs, _ = _read_indices(indices_path)
    fast = read_composition_columns(composition_path, specs)
    assert fast is not None
    assert_same_table(fast, _read_composition(composition_path, specs))


@pytest.mark.parametrize("chunk_rows", [3, 100_000])
def test_column_reader_on_a_large_random_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    monkeypatch.setattr(composition_columns, "CHUNK_ROWS", chunk_rows)
    rng = np.random.default_rng(5)
    n_indices, n_securities = 40, 300
    indices = "index,name,prev_close_level,weight_cap\n" + "".join(
        f"I{k},Index {k},{1000 + k},{'0.2' if k % 3 == 0 else ''}\n" for k in range(n_indices)
    )
    price = np.round(rng.uniform(1, 500, n_securities), 3)
    lines = ["index,security,issued_shares,faf,cap_factor,prev_close"]
    for k in range(n_indices):
        members = rng.choice(n_securities, size=int(rng.integers(10, 60)), replace=False)
        carried = k % 6 == 3  # some capped indices carry their cap factors
        lines += [
            f"I{k},S{s},{rng.integers(1, 10**9)},{rng.uniform(0.1, 1):.3f},"
            f"{f'{rng.uniform(0.5, 1):.4f}' if carried else ''},{price[s]}"
            for s in members
        ]
    indices_path, composition_path = write(tmp_path, indices, "\n".join(lines) + "\n")
    specs, _ = _read_indices(indices_path)
    fast = read_composition_columns(composition_path, specs)
    assert fast is not None and len(fast.membership) == len(lines) - 1
    assert_same_table(fast, _read_composition(composition_path, specs))


COMPOSITION_CASES = [case for case in BAD_FILES if case[1] == "composition"]


@pytest.mark.parametrize(
    ("line", "new"),
    [case[2:4] for case in COMPOSITION_CASES],
    ids=[case[0] for case in COMPOSITION_CASES],
)
def test_column_reader_leaves_every_bad_file_to_the_row_reader(
    tmp_path: Path, line: int, new: str
) -> None:
    indices_path, composition_path = write(tmp_path, INDICES, replace_line(COMPOSITION, line, new))
    specs, _ = _read_indices(indices_path)
    assert read_composition_columns(composition_path, specs) is None


def test_a_nul_in_the_file_is_left_to_the_row_reader(tmp_path: Path) -> None:
    # NumPy strings drop trailing NULs, so codes holding them are numbered by the row reader.
    composition = COMPOSITION.replace("CAP,A,", "CAP,A\x00,")
    indices_path, composition_path = write(tmp_path, INDICES, composition)
    specs, _ = _read_indices(indices_path)
    assert read_composition_columns(composition_path, specs) is None
    assert "A\x00" in load_universe(indices_path, composition_path).securities


def test_rows_of_a_total_return_index_are_its_underlyings_in_file_order(tmp_path: Path) -> None:
    universe = load_universe(*write(tmp_path, INDICES_WITH_RETURN, COMPOSITION))
    m = universe.membership
    underlying, derived = m.index == universe.index_id("CAP"), m.index == 2
    np.testing.assert_array_equal(m.security[derived], m.security[underlying])
    np.testing.assert_array_equal(m.cap_factor[derived], m.cap_factor[underlying])
    np.testing.assert_allclose(universe.divisors[2], 37.5e6 / 5000, rtol=1e-14)


def test_rows_by_index_keeps_row_order_within_each_index() -> None:
    index = np.array([2, 0, 2, 1, 0, 2], dtype=np.int32)
    rows_of = rows_by_index(index, 4)
    assert [rows_of(k).tolist() for k in range(4)] == [[1, 4], [3], [0, 2, 5], []]


def test_build_universe_computes_cap_factors_only_where_missing(tmp_path: Path) -> None:
    universe = load_universe(*write(tmp_path, INDICES, COMPOSITION))
    declared = universe.declared
    carried = declared.replace(cap_factor=np.where(declared.index == 1, 0.5, declared.cap_factor))
    rebuilt = build_universe(universe.indices, universe.securities, universe.prev_close, carried)
    np.testing.assert_array_equal(rebuilt.declared.cap_factor, carried.cap_factor)
