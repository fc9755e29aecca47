"""``tickindex restate`` on bad inputs: one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.restate_day import DAY_NS, Day, make_day, write_events
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
    a_security = np.array(["X", "Y", "Y", "Z", "X"], dtype=np.str_)
    b_ts = np.array([1, 2, 4, 5], dtype=np.int64)
    b_security = np.array(["X", "Y", "Z", "X"], dtype=np.str_)
    a, b = match_rows(a_ts, a_security, b_ts, b_security)
    assert a.tolist() == [0, 1, 4]  # the second (2, Y) of a has no partner; (3, Z) neither
    assert b.tolist() == [0, 1, 3]


def test_a_published_file_without_levels(
    day: Day, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "published.csv").write_text("ts,index,level,seq,security\n")
    assert "no published levels in it" in _fails(capsys, _restate(day, tmp_path))
