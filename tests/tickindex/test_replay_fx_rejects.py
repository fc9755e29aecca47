"""``tickindex replay --fx``: FX rows the currency step rejects are listed as FXFILE:LINE like
every other skipped row, and the FX summary adds up (read = applied + skipped by reason)."""

from __future__ import annotations

import gzip
import io
import json
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from engine.refdata.builtin import load_builtin_universe as load_universe
from producers.fxfile import FxFileReader
from producers.tickfile import TickFileReader
from tickindex.cli.main import main
from tickindex.levels import LevelCollector
from tickindex.replaying import ReplaySettings, run_replay

DAY = "2026-01-05T"  # a Monday, a trading day
VARIANTS = (
    "index,base_index,currency,fx_pair,prev_close_level,fx_prev_close\n"
    "HSI_USD,HSI,USD,HKDUSD,3315.3,0.1285\n"
)
TICKS = [
    f"{DAY}09:30:00+08:00,0700,400.0",
    f"{DAY}09:30:01+08:00,XXXX,1",  # line 3: the reader skips it
    f"{DAY}09:30:05+08:00,0005,100.5",
    f"{DAY}12:30:00+08:00,0700,401",  # line 5: the engine rejects it (lunch)
]
# (ts, pair, rate): the FX reader takes rates in (0, 1e12], the currency step [1e-9, 1e9]
FX = [
    (f"{DAY}09:29:00+08:00", "HKDUSD", "0.1285"),
    (f"{DAY}09:30:02+08:00", "HKDUSD", "2e9"),  # line 3: currency step, over 1e9
    (f"{DAY}09:30:03+08:00", "HKDUSD", "abc"),  # line 4: reader
    (f"{DAY}09:30:04+08:00", "EURUSD", "1.1"),  # line 5: reader, no variant uses it
    (f"{DAY}09:30:06+08:00", "HKDUSD", "5e-10"),  # line 6: currency step, under 1e-9
    (f"{DAY}09:30:07+08:00", "HKDUSD", "0.1286"),
    (f"{DAY}13:00:01+08:00", "HKDUSD", "1e10"),  # line 8: currency step, after the last tick
]
FX_SUMMARY = re.compile(r"FX rows read (\d+), applied (\d+), skipped (\d+)")


def write_inputs(folder: Path, fx: Path) -> tuple[Path, Path]:
    ticks, variants = folder / "ticks.csv", folder / "variants.csv"
    ticks.write_text("ts,security,price\n" + "\n".join(TICKS) + "\n")
    variants.write_text(VARIANTS)
    if fx.suffix == ".csv":
        fx.write_text("ts,pair,rate\n" + "\n".join(",".join(row) for row in FX) + "\n")
    else:
        lines = [json.dumps({"ts": ts, "pair": pair, "rate": rate}) for ts, pair, rate in FX]
        with gzip.open(fx, "wt") as handle:
            handle.write("ts,pair,rate is not JSON\n" + "\n".join(lines) + "\n")
    return ticks, variants


def replay(folder: Path, fx: Path, *extra: str) -> list[str]:
    ticks, variants = write_inputs(folder, fx)
    out = folder / "levels.csv"
    argv = ["replay", "--ticks", str(ticks), "--out", str(out), "--sessions", "--no-progress"]
    assert main([*argv, "--fx", str(fx), "--variants", str(variants), *extra]) == 0
    return Path(f"{out}.rejects").read_text().splitlines()


def test_currency_step_rejects_are_listed_by_line_with_the_readers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx = tmp_path / "fx.csv"
    lines = replay(tmp_path, fx)
    ticks = tmp_path / "ticks.csv"
    assert lines == [
        f"{ticks}:3: unknown_security: 'XXXX'",
        f"{ticks}:5: outside_session: '0700' at {DAY}12:30:00+08:00",
        f"{fx}:3: rate_out_of_range: 'HKDUSD' at {DAY}09:30:02+08:00, rate 2000000000.0",
        f"{fx}:4: non_finite_rate: 'abc'",
        f"{fx}:5: unknown_pair: 'EURUSD'",
        f"{fx}:6: rate_out_of_range: 'HKDUSD' at {DAY}09:30:06+08:00, rate 5e-10",
        f"{fx}:8: rate_out_of_range: 'HKDUSD' at {DAY}13:00:01+08:00, rate 10000000000.0",
    ]
    err = capsys.readouterr().err
    found = FX_SUMMARY.search(err)
    assert found is not None, err
    read, applied, skipped = map(int, found.groups())
    assert (read, applied, skipped) == (len(FX), 2, 5)
    fx_part = err[found.end() :]
    assert re.findall(r"^  skipped (\d+) (\w+)", fx_part, re.M) == [
        ("1", "unknown_pair"),
        ("1", "non_finite_rate"),
        ("3", "rate_out_of_range"),
    ]
    assert "(pairs: EURUSD)" in fx_part
    assert "currency variants: " in err and "levels from 2 FX ticks" in err
    assert replay(tmp_path, fx) == lines  # the same order on every run


def test_fx_json_lines_rejects_name_their_lines_too(tmp_path: Path) -> None:
    fx = tmp_path / "fx.jsonl.gz"
    lines = [line for line in replay(tmp_path, fx) if line.startswith(str(fx))]
    # JSON Lines have no header: the line that is not JSON takes the CSV header's place
    assert [line.split(": ", 2)[0:2] for line in lines] == [
        [f"{fx}:1", "undecodable"],
        [f"{fx}:3", "rate_out_of_range"],
        [f"{fx}:4", "non_finite_rate"],
        [f"{fx}:5", "unknown_pair"],
        [f"{fx}:6", "rate_out_of_range"],
        [f"{fx}:8", "rate_out_of_range"],
    ]


def test_strict_stops_at_a_bad_fx_row_but_not_at_a_currency_step_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx = tmp_path / "fx.csv"
    ticks, variants = write_inputs(tmp_path, fx)
    fx.write_text("ts,pair,rate\n" + "\n".join(",".join(row) for row in FX[:2]) + "\n")
    ticks.write_text("ts,security,price\n" + TICKS[0] + "\n")
    out = tmp_path / "levels.csv"
    argv = ["replay", "--ticks", str(ticks), "--out", str(out), "--no-progress", "--strict"]
    assert main([*argv, "--fx", str(fx), "--variants", str(variants)]) == 0
    assert Path(f"{out}.rejects").read_text().startswith(f"{fx}:3: rate_out_of_range: ")
    err = capsys.readouterr().err
    assert "FX rows read 2, applied 1, skipped 1" in err
    assert f"every skipped row: {out}.rejects" in err  # no tick skipped, an FX row was


def test_no_rejects_file_when_no_fx_row_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx = tmp_path / "fx.csv"
    ticks, variants = write_inputs(tmp_path, fx)
    fx.write_text("ts,pair,rate\n" + ",".join(FX[0]) + "\n" + ",".join(FX[5]) + "\n")
    ticks.write_text("ts,security,price\n" + TICKS[0] + "\n")
    out = tmp_path / "levels.csv"
    stale = Path(f"{out}.rejects")
    stale.write_text("from an earlier replay\n")
    argv = ["replay", "--ticks", str(ticks), "--out", str(out), "--no-progress"]
    assert main([*argv, "--fx", str(fx), "--variants", str(variants)]) == 0
    err = capsys.readouterr().err
    assert "FX rows read 2, applied 2, skipped 0" in err
    assert "every skipped row" not in err
    assert not stale.exists()


def line_numbers(lines: list[str], path: Path) -> list[int]:
    prefix = f"{path}:"
    return [int(line[len(prefix) :].split(":")[0]) for line in lines if line.startswith(prefix)]


@pytest.mark.parametrize("chunk_bytes", [40, 200, 1 << 20])
def test_each_files_rejects_are_in_line_order_however_the_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int
) -> None:
    """Reader skips and engine rejects of a tick file, reader skips and currency-step rejects
    of an FX file: each file's lines ascend, and they are the same lines for any chunk size."""
    start = 1_767_576_600  # 2026-01-05 09:30 HKT, in seconds
    ticks, fx = tmp_path / "ticks.csv", tmp_path / "fx.csv"
    tick_rows = []
    for i in range(60):
        kind = i % 4  # a row to apply, one the reader skips, one outside the sessions
        ts = start + i if kind != 2 else start + 3 * 3600 + i  # 12:30, lunch
        tick_rows.append(f"{ts * 10**9},{'XXXX' if kind == 1 else '0700'},{400 + i / 10}")
    ticks.write_text("ts,security,price\n" + "\n".join(tick_rows) + "\n")
    fx_rows = []
    for i in range(60):
        rate = ("0.1285", "abc", "2e9", "1e-10", "0.1286")[i % 5]  # reader, then currency step
        fx_rows.append(f"{(start + i) * 10**9 + 5},HKDUSD,{rate}")
    fx.write_text("ts,pair,rate\n" + "\n".join(fx_rows) + "\n")
    variants = tmp_path / "variants.csv"
    variants.write_text(VARIANTS)
    real_reader = FxFileReader.__init__

    def small_chunks(self: FxFileReader, *args: Any, **kwargs: Any) -> None:
        real_reader(self, *args, **{**kwargs, "chunk_bytes": chunk_bytes})

    monkeypatch.setattr(FxFileReader, "__init__", small_chunks)
    rejects = io.StringIO()
    settings = ReplaySettings(fx=str(fx), variants=str(variants), sessions=True)
    report = run_replay(
        load_universe(),
        lambda universe: TickFileReader(ticks, universe, chunk_bytes=chunk_bytes, rejects=rejects),
        lambda codes, securities: nullcontext(LevelCollector(codes, securities)),
        settings,
        rejects=rejects,
    )
    lines = rejects.getvalue().splitlines()
    tick_lines, fx_lines = line_numbers(lines, ticks), line_numbers(lines, fx)
    assert tick_lines == [i + 2 for i in range(60) if i % 4 in (1, 2)]
    assert fx_lines == [i + 2 for i in range(60) if i % 5 in (1, 2, 3)]
    assert len(lines) == len(tick_lines) + len(fx_lines)
    assert report.fx is not None and report.currency is not None
    assert report.fx.rows == report.currency.fx_applied + 36
    shown = report.read.log.summary()  # the first 20 on stderr, in the same order
    assert shown[:20] == [line for line in lines if line.startswith(f"{ticks}:")][:20]
