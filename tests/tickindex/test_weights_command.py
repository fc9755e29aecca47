"""``tickindex weights``: names, weights to a fixed number of decimals, exact cap factors."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.support.reference_files import COMPOSITION, INDICES, write
from tickindex.cli.main import main


def _weights(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    assert main(["weights", *argv]) == 0
    return list(csv.DictReader(capsys.readouterr().out.splitlines()))


def test_builtin_weights_carry_names_and_no_float_noise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = _weights([], capsys)
    assert list(rows[0]) == ["index", "security", "name", "weight", "cap_factor"]
    assert all(re.fullmatch(r"[01]\.\d{8}", r["weight"]) for r in rows)
    assert all(r["name"] for r in rows)
    tencent = next(r for r in rows if (r["index"], r["security"]) == ("HSI", "0700"))
    # the capped weight is 0.08000000000000002 in float64: printed as 8%, exactly
    assert tencent["name"] == "Tencent Holdings" and tencent["weight"] == "0.08000000"
    assert float(tencent["cap_factor"]) < 1.0


def test_names_come_from_securities_csv_next_to_the_composition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    indices, composition = write(tmp_path, INDICES, COMPOSITION)
    argv = ["--indices", str(indices), "--composition", str(composition), "--index", "HSI"]
    assert {r["name"] for r in _weights(argv, capsys)} == {""}
    (tmp_path / "securities.csv").write_text(
        "security,name,sector\n0005.HK,HSBC,Finance\n0700.HK,Tencent,IT\n\n"
    )
    names = {r["security"]: r["name"] for r in _weights(argv, capsys)}
    assert names == {"0005.HK": "HSBC", "0700.HK": "Tencent", "0941.HK": ""}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("security,sector\n0005.HK,Finance\n", 1, "header lacks security,name"),
        ("security,name\n0005.HK,HSBC,extra\n", 2, "expected 2 columns, got 3"),
    ],
)
def test_a_bad_securities_csv_stops_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, problem: str
) -> None:
    indices, composition = write(tmp_path, INDICES, COMPOSITION)
    names = tmp_path / "securities.csv"
    names.write_text(text)
    assert main(["weights", "--indices", str(indices), "--composition", str(composition)]) == 2
    assert f"{names}:{line}: {problem}" in capsys.readouterr().err
