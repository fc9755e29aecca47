"""``tickindex restate`` on bad inputs: one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.restate_day import DAY_NS, Day, make_day, write_events
from tickindex.arrow_tables import factorize
from tickindex.cli.main import main
from tickindex.restate_diff import match_rows


@pytest.fixture
def day(tmp_path: Path) -> Day:
    made = make_day(tmp_path, ticks=400)
    command = ["replay", "--ticks", str(made.ticks), *made.universe_args()]
    assert main([*command, "--out", str(tmp_path / "published.csv")]) == 0
    return made


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tickindex restate: error: "), err
    return err


def _restate(day: Day, tmp_path: Path) -> list[str]:
    published = str(tmp_path / "published.csv")
    return ["restate", "--ticks", str(day.ticks), *day.universe_args(), "--published", published]


@pytest.mark.parametrize("missing", ["--ticks", "--published", "--events", "--original-events"])
def test_a_missing_file_names_itself(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    argv = _restate(day, tmp_path)
    absent = str(tmp_path / "absent.csv")
    if missing in argv:
        argv[argv.index(missing) + 1] = absent
    else:
        argv += [missing, absent]
    assert absent in _fails(capsys, argv)


def test_published_levels_of_other_indices(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = tmp_path / "published.csv"
    text = published.read_text().replace(",HSI,", ",HSX,")
    published.write_text(text)
    err = _fails(capsys, _restate(day, tmp_path))
    assert "indices the reference data does not have: HSX" in err


def test_published_levels_of_other_ticks(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = tmp_path / "published.csv"
    lines = published.read_text().splitlines()
    shifted = [
        f"{int(line.split(',', 1)[0]) + DAY_NS * 24},{line.split(',', 1)[1]}" for line in lines[1:]
    ]
    published.write_text("\n".join([lines[0], *shifted]) + "\n")
    assert "no published level matches a replayed one" in _fails(capsys, _restate(day, tmp_path))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("ts,index,level\n1,HSI,2.0\n", ":1: the header must be ts,index,level,seq,security"),
        ("ts,index,level,seq,security\n1,HSI,high,1,A\n", ":2: not a level row"),
        ("ts,index,level,seq,security\n1,HSI,-3.0,1,A\n", ":2: level must be positive"),
    ],
)
def test_a_published_file_that_is_not_levels(
    day: Day,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    problem: str,
) -> None:
    (tmp_path / "published.csv").write_text(content)
    assert problem in _fails(capsys, _restate(day, tmp_path))


def test_arguments_that_do_not_go_together(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    what_if = write_events(tmp_path / "w.jsonl")
    assert "--what-if compares with" in _fails(
        capsys, [*_restate(day, tmp_path), "--what-if", str(what_if)]
    )
    bare = ["restate", "--ticks", str(day.ticks)]
    assert "give --published" in _fails(capsys, bare)
    weights = [*_restate(day, tmp_path), "--weights-out", str(tmp_path / "w.csv")]
    assert "--weights-out needs --what-if" in _fails(capsys, weights)
    half = [*_restate(day, tmp_path), "--original-indices", str(day.indices)]
    assert "--original-composition go together" in _fails(capsys, half)


def test_rows_are_matched_by_tick_time_security_and_occurrence() -> None:
    a_ts = np.array([1, 2, 2, 3, 5], dtype=np.int64)
    b_ts = np.array([1, 2, 4, 5], dtype=np.int64)
    x, y, z = 0, 1, 2  # security numbers
    a_security = np.array([x, y, y, z, x], dtype=np.intp)
    b_security = np.array([x, y, z, x], dtype=np.intp)
    a, b = match_rows(a_ts, a_security, b_ts, b_security)
    assert a.tolist() == [0, 1, 4]  # the second (2, Y) of a has no partner; (3, Z) neither
    assert b.tolist() == [0, 1, 3]


def test_a_published_file_without_levels(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "published.csv").write_text("ts,index,level,seq,security\n")
    assert "no published levels in it" in _fails(capsys, _restate(day, tmp_path))


def _published_parquet(day: Day, tmp_path: Path, table: pa.Table) -> list[str]:
    path = tmp_path / "published.parquet"
    pq.write_table(table, path)
    argv = _restate(day, tmp_path)
    argv[argv.index("--published") + 1] = str(path)
    return argv


def test_a_parquet_level_file_without_a_column(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pa.table({"ts": [1], "index": ["HSI"], "level": [1.0], "security": ["0005.HK"]})
    err = _fails(capsys, _published_parquet(day, tmp_path, table))
    assert "published.parquet: not a level file: no column seq" in err


def test_a_parquet_level_file_with_text_levels(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = pa.table(
        {"ts": [1], "index": ["HSI"], "level": ["1.0"], "seq": [1], "security": ["0005.HK"]}
    )
    err = _fails(capsys, _published_parquet(day, tmp_path, table))
    assert "column level must be float64, not string" in err


def test_a_parquet_level_file_with_a_time_past_int64(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {
        "ts": pa.array([1, 2**63], type=pa.uint64()),
        "index": ["HSI"] * 2,
        "level": [1.0, 2.0],
        "seq": [1, 2],
        "security": ["0005.HK"] * 2,
    }
    err = _fails(capsys, _published_parquet(day, tmp_path, pa.table(rows)))
    assert "published.parquet: column ts has a value outside int64" in err


def test_a_bad_level_in_a_parquet_file_is_named_by_row(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {
        "ts": [1, 2, 3],
        "index": ["HSI"] * 3,
        "level": [1.0, float("nan"), 2.0],
        "seq": [1, 2, 3],
        "security": ["0005.HK"] * 3,
    }
    err = _fails(capsys, _published_parquet(day, tmp_path, pa.table(rows)))
    assert "published.parquet:2: level must be positive and finite: nan" in err


def test_a_truncated_parquet_file(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["replay", "--ticks", str(day.ticks), *day.universe_args()]
    path = tmp_path / "published.parquet"
    assert main([*command, "--out", str(path)]) == 0
    path.write_bytes(path.read_bytes()[:-100])
    argv = _restate(day, tmp_path)
    argv[argv.index("--published") + 1] = str(path)
    assert "published.parquet: cannot read the level file" in _fails(capsys, argv)


def test_factorize_is_np_unique_with_inverse() -> None:
    seed = 20261207
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    codes = np.array(["HSI", "HSCEI", "HS_TECH", "0005.HK", "", "Ω", "HSI2"], dtype=np.str_)
    values = codes[rng.integers(0, codes.size, 5_000)]
    found, position = factorize(values)
    expected, inverse = np.unique(values, return_inverse=True)
    assert np.array_equal(found, expected) and np.array_equal(position, inverse)
    assert factorize(np.empty(0, np.str_))[1].size == 0
