"""``tickindex replay`` and ``tickindex weights`` end to end through the command line."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.refdata.builtin import builtin_files, load_builtin_universe
from engine.refdata.universe import Universe
from producers.simulator import MarketSimulator
from tests.support.scalar_reference import RefIndex, RefRow, ScalarIndexModel
from tickindex.cli.main import main
from tickindex.cli.weights import constituent_weights

START_NS = 1_795_138_200_000_000_000


def _total_return_variants() -> list[tuple[str, str, float]]:
    """(code, underlying, prev close ratio) of the built-in total return indices."""
    with builtin_files()[0].open() as handle:
        rows = list(csv.DictReader(handle))
    close = {r["index"]: float(r["prev_close_level"]) for r in rows}
    return [
        (r["index"], r["underlying"], close[r["index"]] / close[r["underlying"]])
        for r in rows
        if r["underlying"]
    ]


def _reference_model(universe: Universe) -> ScalarIndexModel:
    """The scalar model of the built-in price indices."""
    indices_path, composition_path = builtin_files()
    with indices_path.open() as handle:
        indices = [
            RefIndex(r["index"], float(r["prev_close_level"]), float(r["weight_cap"] or "nan"))
            if r["weight_cap"]
            else RefIndex(r["index"], float(r["prev_close_level"]))
            for r in csv.DictReader(handle)
            if not r["underlying"]
        ]
    with composition_path.open() as handle:
        rows = [
            RefRow(
                r["index"],
                r["security"],
                float(r["issued_shares"]),
                float(r["faf"]),
                float(r["cap_factor"]) if r["cap_factor"] else None,
                float(r["prev_close"]),
            )
            for r in csv.DictReader(handle)
        ]
    return ScalarIndexModel(indices, rows)


def _write_ticks(path: Path, universe: Universe, n: int, seed: int) -> list[tuple[int, str, float]]:
    ticks = MarketSimulator(universe, seed, start_ns=START_NS).next_batch(n)
    rows = [
        (int(t), universe.securities[int(s)], float(p))
        for t, s, p in zip(ticks.ts_event, ticks.security, ticks.price, strict=True)
    ]
    with path.open("w") as handle:
        handle.write("ts,security,price,volume\n")
        handle.writelines(f"{t},{s},{p!r},100\n" for t, s, p in rows)
    return rows


def test_replay_equals_scalar_reference_tick_by_tick(tmp_path: Path) -> None:
    universe = load_builtin_universe()
    ticks = _write_ticks(tmp_path / "ticks.csv", universe, 3000, seed=11)
    out = tmp_path / "levels.csv"
    assert main(["replay", "--ticks", str(tmp_path / "ticks.csv"), "--out", str(out)]) == 0
    model = _reference_model(universe)
    variants = _total_return_variants()
    expected: list[tuple[int, str, float]] = []
    for ts, sec, px in ticks:
        levels = dict(model.tick(sec, px))
        expected.extend((ts, code, level) for code, level in levels.items())
        # Without dividends a total return index moves in proportion with its underlying.
        expected.extend(
            (ts, code, levels[underlying] * ratio)
            for code, underlying, ratio in variants
            if underlying in levels
        )
    with out.open() as handle:
        reader = csv.reader(handle)
        assert next(reader)[:3] == ["ts", "index", "level"]
        got = [(int(r[0]), r[1], float(r[2])) for r in reader]
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    worst = max(abs(g[2] - e[2]) / e[2] for g, e in zip(got, expected, strict=True))
    assert worst <= 1e-12


def test_replay_skips_and_reports_bad_ticks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "ts,security,price\n1,0700,400\n2,XXXX,1\n3,0700,nan\n4,0700,0\n5,0005,-2\nbad,0005,60\n"
        "6,0005,60\n"
    )
    out = tmp_path / "levels.jsonl"
    assert main(["replay", "--ticks", str(ticks), "--out", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["ts"] for r in records} == {1, 6}
    assert all(set(r) == {"ts", "index", "level", "seq", "security"} for r in records)
    err = capsys.readouterr().err
    assert "applied 2" in err and "skipped 5" in err
    for label in ("unknown_security", "non_finite_price", "non_positive_price", "bad_timestamp"):
        assert label in err
    assert "XXXX" in err and f"{ticks}:7: bad_timestamp" in err


def test_replay_conflation_keeps_last_level_per_interval(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.csv"
    second = 1_000_000_000
    ticks.write_text(
        "ts,security,price\n"
        f"{0},0005,60\n{1 * second},0005,61\n{2 * second},0005,62\n{int(2.5 * second)},0005,63\n"
        f"{5 * second},0700,400\n"
    )
    full, conflated = tmp_path / "full.csv", tmp_path / "conflated.csv"
    assert main(["replay", "--ticks", str(ticks), "--out", str(full)]) == 0
    assert (
        main(["replay", "--ticks", str(ticks), "--out", str(conflated), "--conflate-ms", "2000"])
        == 0
    )
    rows = list(csv.DictReader(full.open()))
    kept = list(csv.DictReader(conflated.open()))
    hsi = [r for r in kept if r["index"] == "HSI"]
    assert [int(r["ts"]) for r in hsi] == [1 * second, int(2.5 * second), 5 * second]
    by_key = {(r["ts"], r["index"]): r["level"] for r in rows}
    assert all(by_key[r["ts"], r["index"]] == r["level"] for r in kept)


def test_replay_bad_reference_file_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    indices = tmp_path / "indices.csv"
    indices.write_text("index,name,prev_close_level,weight_cap\nX,X,100,\n")
    composition = tmp_path / "composition.csv"
    composition.write_text(
        "index,security,issued_shares,faf,cap_factor,prev_close\nX,A,100,1.5,,10\n"
    )
    (tmp_path / "t.csv").write_text("ts,security,price\n")
    code = main(
        [
            "replay",
            "--indices",
            str(indices),
            "--composition",
            str(composition),
            "--ticks",
            str(tmp_path / "t.csv"),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2
    assert f"{composition}:2: faf must be in (0, 1]" in capsys.readouterr().err


def test_weights_command_matches_capping(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "--index", "HSI"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    weights = np.array([float(r["weight"]) for r in rows])
    factors = np.array([float(r["cap_factor"]) for r in rows])
    assert {r["index"] for r in rows} == {"HSI"}
    universe = load_builtin_universe()
    members = universe.membership
    hsi = np.flatnonzero(members.index == universe.index_id("HSI"))
    exact = constituent_weights(universe)[hsi]
    codes = [universe.securities[s] for s in members.security[hsi].tolist()]
    assert math.isclose(exact.sum(), 1.0, rel_tol=1e-12)
    # printed: the exact weight to 8 decimals, the exact cap factor
    expected = {
        code: (f"{w:.8f}", repr(float(f)))
        for code, w, f in zip(codes, exact.tolist(), members.cap_factor[hsi].tolist(), strict=True)
    }
    assert {r["security"]: (r["weight"], r["cap_factor"]) for r in rows} == expected
    assert weights.max() <= 0.08 * (1 + 1e-9)
    assert (factors[weights < 0.08 * (1 - 1e-9)] == 1.0).all()
    assert list(weights) == sorted(weights, reverse=True)


def test_weights_unknown_index(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "--index", "NOPE"]) == 2
    assert "unknown index 'NOPE'" in capsys.readouterr().err


def test_replay_with_a_usd_variant_of_the_hsi(tmp_path: Path) -> None:
    """A constituent tick moves HSI, then HKDUSD goes 0.1285 -> 0.1280: HSI_USD follows both."""
    universe = load_builtin_universe()
    hsi = universe.index_id("HSI")
    member = universe.securities[
        int(universe.membership.security[universe.membership.index == hsi][0])
    ]
    ticks = tmp_path / "ticks.csv"
    price = float(universe.prev_close[universe.security_id(member)]) * 1.01
    ticks.write_text(f"ts,security,price\n10,{member},{price!r}\n")
    (tmp_path / "fx.csv").write_text("ts,pair,rate\n20,HKDUSD,0.1280\n")
    (tmp_path / "variants.csv").write_text(
        "index,base_index,currency,fx_pair,prev_close_level,fx_prev_close\n"
        "HSI_USD,HSI,USD,HKDUSD,3315.3,0.1285\n"
    )
    out = tmp_path / "levels.csv"
    args = ["replay", "--ticks", str(ticks), "--out", str(out)]
    assert (
        main(
            [*args, "--fx", str(tmp_path / "fx.csv"), "--variants", str(tmp_path / "variants.csv")]
        )
        == 0
    )
    rows = [r for r in csv.DictReader(out.open()) if r["index"] in ("HSI", "HSI_USD")]
    hsi_level = float(rows[0]["level"])
    usd = [float(r["level"]) for r in rows if r["index"] == "HSI_USD"]
    assert [r["index"] for r in rows] == ["HSI", "HSI_USD", "HSI_USD"]
    assert usd[0] == pytest.approx(hsi_level * 3315.3 / 25800, rel=1e-12)
    assert usd[1] == pytest.approx(hsi_level * 3315.3 / 25800 * 0.1280 / 0.1285, rel=1e-12)
    assert [r["seq"] for r in rows if r["index"] == "HSI_USD"] == ["1", "2"]
