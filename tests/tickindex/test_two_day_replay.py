"""Two trading days through `tickindex replay`: day one, end-of-day roll, day two with a split
and a rights issue before the open. Levels stay continuous from day one's close on."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe
from producers.simulator import MarketSimulator
from tests.support.seed import SEED
from tickindex.cli.main import main

pytestmark = pytest.mark.slow

DAY1_OPEN = 1_795_138_200_000_000_000  # Friday 2026-11-20 09:30 HKT
DAY2 = "2026-11-23"  # the next trading day (Monday)
DAY2_OPEN = DAY1_OPEN + 3 * 86_400 * 10**9
SESSION_NS = (6 * 3600 + 40 * 60) * 10**9  # 09:30 to 16:10, lunch included (rejected)


def _write_ticks(path: Path, universe: Universe, ticks: TickColumns) -> None:
    with path.open("w") as handle:
        handle.write("ts,security,price\n")
        handle.writelines(
            f"{t},{universe.securities[s]},{p!r}\n"
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )


def _levels(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _replay(args: list[str]) -> None:
    assert main(["replay", "--no-progress", *args]) == 0


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    print(f"seed {SEED}")
    work = tmp_path_factory.mktemp("two_days")
    day1 = load_builtin_universe()
    ticks1 = MarketSimulator(day1, SEED, start_ns=DAY1_OPEN, rate=6, jumps_per_day=0).batch_for(
        SESSION_NS
    )
    _write_ticks(work / "day1.csv", day1, ticks1)
    _replay(
        [
            "--ticks",
            str(work / "day1.csv"),
            "--out",
            str(work / "levels1.csv"),
            "--ohlc",
            str(work / "bars1.csv"),
            "--eod-dir",
            str(work / "eod"),
        ]
    )
    rolled = work / "eod" / DAY2
    day2 = load_universe(rolled / "indices.csv", rolled / "composition.csv")
    ticks2 = MarketSimulator(
        day2, SEED + 1, start_ns=DAY2_OPEN, rate=20, jumps_per_day=0
    ).batch_for(3600 * 10**9)
    price = ticks2.price.copy()
    price[ticks2.security == day2.security_id("0700")] /= 2
    hsbc = ticks2.security == day2.security_id("0005")
    cum = float(day2.prev_close[day2.security_id("0005")])
    price[hsbc] *= (4 * cum + 0.5 * cum) / (5 * cum)  # 1-for-4 at half the cum price
    _write_ticks(work / "day2.csv", day2, TickColumns(ticks2.ts_event, ticks2.security, price))
    (work / "events.jsonl").write_text(
        '{"type":"stock_split","effective":"2026-11-23T09:00:00+08:00","security":"0700",'
        '"ratio":2}\n'
        '{"type":"rights_issue","effective":"2026-11-23T09:00:00+08:00","security":"0005",'
        f'"new_shares":1,"per_held":4,"subscription_price":{cum * 0.5!r}}}\n'
    )
    _replay(
        [
            "--indices",
            str(rolled / "indices.csv"),
            "--composition",
            str(rolled / "composition.csv"),
            "--ticks",
            str(work / "day2.csv"),
            "--out",
            str(work / "levels2.csv"),
            "--events",
            str(work / "events.jsonl"),
            "--audit",
            str(work / "audit2.csv"),
            "--sessions",
        ]
    )
    return work


def _last_level(rows: list[dict[str, str]]) -> dict[str, float]:
    return {row["index"]: float(row["level"]) for row in rows}


def test_day_two_opens_at_day_one_close(two_days: Path) -> None:
    close1 = _last_level(_levels(two_days / "levels1.csv"))
    with (two_days / "eod" / DAY2 / "indices.csv").open() as handle:
        opening = {r["index"]: float(r["prev_close_level"]) for r in csv.DictReader(handle)}
    assert opening.keys() == close1.keys()
    for code, level in close1.items():
        assert opening[code] == pytest.approx(level, rel=1e-12), code
    with (two_days / "bars1.csv").open() as handle:
        bars = {r["index"]: float(r["close"]) for r in csv.DictReader(handle)}
    assert bars == close1


def test_corporate_actions_before_the_open_keep_levels(two_days: Path) -> None:
    with (two_days / "eod" / DAY2 / "indices.csv").open() as handle:
        opening = {r["index"]: float(r["prev_close_level"]) for r in csv.DictReader(handle)}
    with (two_days / "audit2.csv").open() as handle:
        audit = list(csv.DictReader(handle))
    causes = {row["cause"].split()[0] for row in audit}
    assert causes == {"stock_split", "rights_issue"}
    assert {row["index"] for row in audit} >= {"HSI", "HSTECH", "HSI_FIN", "HSI_GTR"}
    for row in audit:
        assert float(row["level"]) == pytest.approx(opening[row["index"]], rel=1e-12)
    rights = [row for row in audit if row["cause"].startswith("rights_issue")]
    assert all(float(r["new_divisor"]) > float(r["old_divisor"]) for r in rights)


def test_levels_continuous_across_both_days(two_days: Path) -> None:
    rows = _levels(two_days / "levels1.csv") + _levels(two_days / "levels2.csv")
    for code in ("HSI", "HSTECH", "HSCEI", "HSI_GTR", "HSI_FIN"):
        series = np.array([float(r["level"]) for r in rows if r["index"] == code])
        moves = np.abs(np.diff(series) / series[:-1])
        assert moves.max() < 0.005, f"{code} jumped by {moves.max():.2%}"
    day1 = [r for r in _levels(two_days / "levels1.csv") if r["index"] == "HSI"]
    lunch = [int(r["ts"]) for r in day1 if 12 <= (int(r["ts"]) // 10**9 // 3600 + 8) % 24 < 13]
    assert lunch == []
