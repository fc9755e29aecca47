"""Every offline command on malformed files: FILE:LINE: reason or a counted skip, no traceback.

A corpus of a few hundred generated files (``tests.support.malformed_corpus``), each run in process
through ``tickindex.cli.main.main``: the exit code is 0 or 2, nothing prints a traceback, an error
names the bad file (and its line where the problem has one), and summaries add up.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.support.malformed_corpus import (
    MAYBE_ACCEPTED_ROWS,
    Case,
    missing_files,
    reference_cases,
    tick_cases,
    write_valid_files,
)
from tickindex.cli.main import main

SUMMARY = re.compile(r"ticks read (\d+), applied (\d+), skipped (\d+)")
FX_SUMMARY = re.compile(r"FX rows read (\d+), applied (\d+), skipped (\d+)")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def replay_argv(files: dict[str, Path], out: Path, **replaced: Path) -> list[str]:
    chosen = {**files, **replaced}
    argv = [
        "replay",
        *("--indices", str(chosen["indices"]), "--composition", str(chosen["composition"])),
        *("--ticks", str(chosen["ticks"]), "--out", str(out), "--no-progress"),
    ]
    if "calendar" in replaced:
        argv += ["--calendar", str(chosen["calendar"])]
    if "fx" in replaced or "variants" in replaced:
        argv += ["--fx", str(chosen["fx"]), "--variants", str(chosen["variants"])]
    if "events" in replaced:
        argv += ["--events", str(chosen["events"])]
    return argv


def check(case: Case, code: int, output: str, *, must_fail: bool) -> list[str]:
    """What is wrong with one run (empty when all is well)."""
    problems = []
    if "Traceback" in output or code not in (0, 2):
        problems.append(f"exit {code}, traceback: {'Traceback' in output}")
    if must_fail and code != 2:
        problems.append(f"exit {code}, expected 2")
    if code == 2:
        where = f"{case.path}:{case.line}:" if case.line is not None and must_fail else None
        if f"{case.path}:" not in output:
            problems.append("error does not name the file")
        elif where is not None and where not in output:
            problems.append(f"error does not name {where}")
    return [f"{case.name} ({case.path.name}): {p}\n{output[-600:]}" for p in problems]


def summary_adds_up(case: Case, output: str) -> list[str]:
    """``read == applied + skipped``; each skipped row reported with FILE:LINE (up to 20)."""
    pattern = FX_SUMMARY if case.role == "fx" else SUMMARY
    found = pattern.search(output)
    if found is None:
        return [f"{case.name}: no summary line\n{output[-600:]}"]
    read, used, skipped = (int(n) for n in found.groups())
    problems = []
    if read != used + skipped:
        problems.append(f"read {read} != used {used} + skipped {skipped}")
    reported = len(re.findall(rf"^  {re.escape(str(case.path))}:\d+: ", output, re.M))
    if reported != min(skipped, 20):
        problems.append(f"{reported} rows reported for {skipped} skipped")
    surely_bad = case.line is not None and case.name.split(" ", 1)[1] not in MAYBE_ACCEPTED_ROWS
    if surely_bad and f"{case.path}:{case.line}: " not in output:
        problems.append(f"line {case.line} not reported")
    return [f"{case.name} ({case.path.name}): {p}\n{output[-600:]}" for p in problems]


@pytest.mark.slow
def test_reference_files_stop_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    cases = list(reference_cases(tmp_path / "bad"))
    assert len(cases) >= 100
    failures: list[str] = []
    for case in cases:
        out = tmp_path / "levels.csv"
        code, output = run(replay_argv(files, out, **{case.role: case.path}), capsys)
        failures += check(case, code, output, must_fail=case.fatal)
        if case.role in ("indices", "composition"):
            argv = ["weights", "--indices", str(files["indices"])]
            argv += ["--composition", str(files["composition"]), f"--{case.role}", str(case.path)]
            code, output = run(argv, capsys)
            failures += check(case, code, output, must_fail=case.fatal)
    assert not failures, "\n\n".join(failures[:10])


@pytest.mark.slow
def test_bad_tick_and_fx_rows_are_skipped_reported_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    cases = list(tick_cases(tmp_path / "bad"))
    assert len(cases) >= 100
    failures: list[str] = []
    for case in cases:
        argv = replay_argv(files, tmp_path / "levels.csv", **{case.role: case.path})
        code, output = run(argv, capsys)
        failures += check(case, code, output, must_fail=case.fatal)
        if not case.fatal:
            failures += summary_adds_up(case, output)
    assert not failures, "\n\n".join(failures[:10])


@pytest.mark.slow
def test_strict_mode_stops_at_the_first_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    failures: list[str] = []
    for case in tick_cases(tmp_path / "bad"):
        argv = replay_argv(files, tmp_path / "levels.csv", **{case.role: case.path})
        code, output = run([*argv, "--strict"], capsys)
        surely_bad = case.line is not None and case.name.split(" ", 1)[1] not in (
            MAYBE_ACCEPTED_ROWS
        )
        failures += check(case, code, output, must_fail=case.fatal or surely_bad)
    assert not failures, "\n\n".join(failures[:10])


def test_files_that_cannot_be_opened_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    failures: list[str] = []
    for name, path in missing_files(tmp_path):
        for role in ("indices", "composition", "calendar", "variants", "fx", "events", "ticks"):
            case = Case(f"{role} {name}", role, path, None, fatal=True)
            argv = replay_argv(files, tmp_path / "levels.csv", **{role: path})
            failures += check(case, *run(argv, capsys), must_fail=True)
        case = Case(f"rejects file {name}", "rejects", path, None, fatal=True)
        argv = [*replay_argv(files, tmp_path / "levels.csv"), "--rejects", str(path)]
        if name != "missing":
            failures += check(case, *run(argv, capsys), must_fail=True)
    assert not failures, "\n\n".join(failures)


def test_rejects_file_has_every_skipped_row_and_the_summary_is_capped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    ticks = tmp_path / "ticks.csv"
    rows = [f"{1000 + i},ZZZ{i % 7},10.0" if i % 3 else f"{1000 + i},AAA,10.0" for i in range(90)]
    ticks.write_text("ts,security,price\n" + "\n".join(rows) + "\n")
    rejects = tmp_path / "rejects.txt"
    argv = replay_argv(files, tmp_path / "levels.csv", ticks=ticks)
    code, output = run([*argv, "--rejects", str(rejects)], capsys)
    assert code == 0
    lines = rejects.read_text().splitlines()
    assert len(lines) == 60
    assert lines[0] == f"{ticks}:3: unknown_security: 'ZZZ1'"
    assert "ticks read 90, applied 30, skipped 60" in output
    shown = re.findall(rf"^  {re.escape(str(ticks))}:\d+: ", output, re.M)
    assert len(shown) == 20
    assert "... and 40 more skipped rows (all in the --rejects file)" in output


def test_strict_and_lenient_on_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_text(
        '{"ts":1000,"security":"AAA","price":10.5}\n'
        f'{{"ts":{2**64},"security":"AAA","price":10.5}}\n'
        '{"ts":3000,"security":"BBB","price":20.5}\n'
    )
    out = tmp_path / "levels.csv"
    lenient = replay_argv(files, out, ticks=ticks)
    code, output = run([*lenient, "--lenient"], capsys)
    assert code == 0 and "ticks read 3, applied 2, skipped 1" in output
    assert f"{ticks}:2: bad_timestamp: {2**64}" in output
    assert len(out.read_text().splitlines()) > 1
    code, output = run([*lenient, "--strict"], capsys)
    assert code == 2
    assert f"tickindex replay: error: {ticks}:2: bad_timestamp: {2**64}" in output


def test_output_files_that_cannot_be_written_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    nowhere = tmp_path / "missing-folder" / "out.csv"
    for option in ("--out", "--audit", "--ohlc", "--rejects"):
        for target in (folder, nowhere):
            argv = replay_argv(files, tmp_path / "levels.csv")
            argv = [*argv, option, str(target)] if option != "--out" else [
                *argv[: argv.index("--out")], "--out", str(target), "--no-progress"
            ]  # fmt: skip
            code, output = run(argv, capsys)
            assert code == 2 and "Traceback" not in output, output
            assert f"{target}: cannot write: " in output, output


PUBLISH_SUMMARY = re.compile(r"rows read ([\d,]+), published ([\d,]+), skipped ([\d,]+)")


@pytest.mark.kafka
def test_publish_on_malformed_files(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_valid_files(tmp_path / "valid")
    ticks = [c for c in tick_cases(tmp_path / "bad") if c.role == "ticks"]
    chosen = [c for c in ticks if c.fatal] + [c for c in ticks if not c.fatal][::6]
    chosen += [c for c in reference_cases(tmp_path / "ref") if c.role != "variants"][::8]
    chosen = [c for c in chosen if c.role in ("ticks", "indices", "composition")]
    assert len(chosen) >= 25
    topic = f"malformed-{uuid.uuid4().hex[:12]}"
    failures: list[str] = []
    published_total = 0
    for case in chosen:
        universe = {"indices": files["indices"], "composition": files["composition"]}
        universe[case.role] = case.path
        argv = ["publish", str(case.path if case.role == "ticks" else files["ticks"])]
        argv += ["--bootstrap", kafka_bootstrap, "--topic", topic, "--as-fast-as-possible"]
        argv += [
            "--indices",
            str(universe["indices"]),
            "--composition",
            str(universe["composition"]),
        ]
        code, output = run(argv, capsys)
        failures += check(case, code, output, must_fail=case.fatal)
        if code == 0:
            found = PUBLISH_SUMMARY.search(output)
            assert found is not None, output
            read, published, skipped = (int(n.replace(",", "")) for n in found.groups())
            assert read == published + skipped, output
            published_total += published
    assert published_total > 0
    assert not failures, "\n\n".join(failures[:10])


def test_an_unexpected_error_is_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_valid_files(tmp_path / "valid")
    argv = ["weights", "--indices", str(files["indices"]), "--composition"]
    argv.append(str(files["composition"]))

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("tickindex.cli.weights.constituent_weights", broken)
    code, output = run(argv, capsys)
    assert code == 3 and "Traceback" not in output
    assert "tickindex weights: error: internal error RuntimeError: a bug" in output
    assert "TICKINDEX_DEBUG=1" in output
    monkeypatch.setenv("TICKINDEX_DEBUG", "1")
    with pytest.raises(RuntimeError, match="a bug"):
        main(argv)
