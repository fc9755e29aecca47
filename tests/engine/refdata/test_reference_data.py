"""Reading indices and composition files: good files load, every bad file names file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import ReferenceDataError
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe
from tests.support.reference_files import BAD_FILES, COMPOSITION, INDICES, replace_line, write

# HSI: 10*1000*0.5 + 20*500*0.8*0.5 + 50*200*0.7 = 5000 + 4000 + 7000 = 16000 -> divisor 0.8.
# CAP: free-float caps 20M, 30M, 10M, 5M capped at 30% -> CF .5625, .375, 1, 1
#      -> 11.25M + 11.25M + 10M + 5M = 37.5M -> divisor 7500.


def load(tmp_path: Path, indices: str = INDICES, composition: str = COMPOSITION) -> Universe:
    return load_universe(*write(tmp_path, indices, composition))


def test_good_files_load(tmp_path: Path) -> None:
    universe = load(tmp_path)
    assert universe.index_codes == ("HSI", "CAP")
    assert universe.securities == ("0005.HK", "0700.HK", "0941.HK", "A", "B", "D")
    np.testing.assert_array_equal(universe.prev_close, [10.0, 20.0, 50.0, 10.0, 30.0, 5.0])
    assert universe.indices[1].weight_cap == 0.3
    assert universe.indices[0].weight_cap is None
    assert universe.indices[0].name == "Hang Seng Index"
    assert len(universe.membership.index) == 7
    assert not np.isnan(universe.membership.cap_factor).any()


def test_divisors_match_hand_computation(tmp_path: Path) -> None:
    universe = load(tmp_path)
    np.testing.assert_allclose(universe.divisors, [16000 / 20000, 37.5e6 / 5000], rtol=1e-14)


def test_cap_factors_computed_for_capped_index_only(tmp_path: Path) -> None:
    universe = load(tmp_path)
    m = universe.membership
    hsi = m.index == universe.index_id("HSI")
    np.testing.assert_array_equal(m.cap_factor[hsi], [1.0, 0.5, 1.0])  # file value or default 1
    cap = m.index == universe.index_id("CAP")
    codes = [universe.securities[s] for s in m.security[cap]]
    by_code = dict(zip(codes, m.cap_factor[cap].tolist(), strict=True))
    assert by_code["A"] == pytest.approx(0.5625, rel=1e-12)
    assert by_code["B"] == pytest.approx(0.375, rel=1e-12)
    assert by_code["0005.HK"] == 1.0
    assert by_code["D"] == 1.0


def test_blank_lines_and_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    composition = COMPOSITION.replace("HSI,0700.HK", "\nHSI,0700.HK")
    indices_path, composition_path = write(tmp_path, INDICES, composition)
    indices_path.write_bytes(b"\xef\xbb\xbf" + INDICES.encode())
    universe = load_universe(indices_path, composition_path)
    np.testing.assert_allclose(universe.divisors, [0.8, 7500.0], rtol=1e-14)


# (case id, file edited, its line, new line text, problem pattern). Files as above.


@pytest.mark.parametrize(
    ("which", "line", "new", "problem"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_names_file_line_and_problem(
    tmp_path: Path, which: str, line: int, new: str, problem: str
) -> None:
    indices, composition = INDICES, COMPOSITION
    if which == "indices":
        indices = replace_line(indices, line, new)
    else:
        composition = replace_line(composition, line, new)
    indices_path, composition_path = write(tmp_path, indices, composition)
    with pytest.raises(ReferenceDataError, match=problem) as caught:
        load_universe(indices_path, composition_path)
    path = str(indices_path if which == "indices" else composition_path)
    exc = caught.value
    assert exc.path == path
    assert exc.line == line
    assert str(exc) == f"{path}:{line}: {exc.problem}"
    assert str(exc).startswith(path)


@pytest.mark.parametrize("which", ["indices", "composition"])
def test_invalid_utf8_names_that_file_and_line(tmp_path: Path, which: str) -> None:
    indices_path, composition_path = write(tmp_path, INDICES, COMPOSITION)
    bad = indices_path if which == "indices" else composition_path
    data = bad.read_bytes().split(b"\n")
    data[2] = data[2].replace(b",", b"\xff,", 1)
    bad.write_bytes(b"\n".join(data))
    with pytest.raises(ReferenceDataError, match="invalid UTF-8 at column") as caught:
        load_universe(indices_path, composition_path)
    assert (caught.value.path, caught.value.line) == (str(bad), 3)


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    composition = COMPOSITION.replace("HSI,0941.HK,200,0.7,,50", "\n\nHSI,0941.HK,200,0.7,,-50")
    indices_path, composition_path = write(tmp_path, INDICES, composition)
    with pytest.raises(ReferenceDataError, match=r"prev_close must be in \(0, 1e\+12\]") as caught:
        load_universe(indices_path, composition_path)
    assert caught.value.line == 6
    assert str(caught.value).startswith(f"{composition_path}:6: ")


def test_index_with_no_constituents_names_its_line(tmp_path: Path) -> None:
    indices = INDICES + "EMPTY,No Members,1000,\n"
    indices_path, composition_path = write(tmp_path, indices, COMPOSITION)
    with pytest.raises(ReferenceDataError, match="EMPTY has no constituents") as caught:
        load_universe(indices_path, composition_path)
    assert caught.value.path == str(indices_path)
    assert caught.value.line == 4
    assert str(caught.value).startswith(f"{indices_path}:4: ")


@pytest.mark.parametrize("which", ["indices", "composition"])
def test_missing_file(tmp_path: Path, which: str) -> None:
    indices_path, composition_path = write(tmp_path, INDICES, COMPOSITION)
    missing = indices_path if which == "indices" else composition_path
    missing.unlink()
    with pytest.raises(ReferenceDataError, match="cannot open") as caught:
        load_universe(indices_path, composition_path)
    assert caught.value.path == str(missing)
    assert caught.value.line is None
    assert str(caught.value).startswith(str(missing))


@pytest.mark.parametrize("which", ["indices", "composition"])
def test_header_only_file(tmp_path: Path, which: str) -> None:
    indices, composition = INDICES, COMPOSITION
    if which == "indices":
        indices = INDICES.splitlines()[0] + "\n"
    else:
        composition = COMPOSITION.splitlines()[0] + "\n"
    indices_path, composition_path = write(tmp_path, indices, composition)
    with pytest.raises(ReferenceDataError, match=r"no (indices|constituents) defined") as caught:
        load_universe(indices_path, composition_path)
    path = indices_path if which == "indices" else composition_path
    assert str(caught.value).startswith(str(path))


def test_infeasible_cap_names_index_file_and_line(tmp_path: Path) -> None:
    """A 30% cap cannot be met by 3 names; the error must say which index and where."""
    composition = replace_line(COMPOSITION, 8, "")  # CAP keeps 0005.HK, A and B
    indices_path, composition_path = write(tmp_path, INDICES, composition)
    with pytest.raises(ReferenceDataError, match="cannot be met") as caught:
        load_universe(indices_path, composition_path)
    exc = caught.value
    assert exc.path in (str(indices_path), str(composition_path))
    assert str(exc).startswith(exc.path)
    assert "CAP" in exc.problem, f"the message does not say which index: {exc}"
    # The weight_cap that cannot be met is on line 3 of the indices file.
    assert exc.line is not None, f"the message names no line: {exc}"


def test_capped_index_with_carried_cap_factors_uses_them(tmp_path: Path) -> None:
    carried = {"0005.HK": "0.9", "A": "0.8", "B": "1", "D": "1"}
    lines = []
    for line in COMPOSITION.splitlines():
        fields = line.split(",")
        if fields[0] == "CAP":
            fields[4] = carried[fields[1]]
        lines.append(",".join(fields))
    universe = load_universe(*write(tmp_path, INDICES, "\n".join(lines) + "\n"))
    rows = universe.membership.index == universe.index_id("CAP")
    security = [universe.securities[s] for s in universe.membership.security[rows]]
    factors = dict(zip(security, universe.membership.cap_factor[rows].tolist(), strict=True))
    assert factors == {"0005.HK": 0.9, "A": 0.8, "B": 1.0, "D": 1.0}
