"""Maintenance events are range-checked when decoded, and the core refuses non-finite results."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import numpy as np
import pytest

from engine.core.errors import ReferenceDataError
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.adjustments import EventError, apply_event
from engine.maintenance.event_files import load_events, load_sourced_events
from engine.maintenance.events import IndexEvent, RightsIssue, SpecialDividend, StockSplit
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe

T = 1_795_138_200_000_000_000
JSON = msgspec.json.Decoder(IndexEvent)
MSGPACK = msgspec.msgpack.Decoder(IndexEvent)


def _split(**fields: object) -> dict[str, object]:
    return {"type": "stock_split", "effective": T, "security": "0700", "ratio": 2.0} | fields


def _rights(**fields: object) -> dict[str, object]:
    event = {"type": "rights_issue", "effective": T, "security": "0005"}
    return event | {"new_shares": 1, "per_held": 4, "subscription_price": 50.0} | fields


def _add(**fields: object) -> dict[str, object]:
    event = {"type": "add_constituent", "effective": T, "index": "HSI", "security": "9999"}
    return event | {"issued_shares": 1e9, "faf": 0.5, "price": 10.0} | fields


def _review(rows: list[dict[str, object]]) -> dict[str, object]:
    return {"type": "review", "effective": T, "rows": rows}


ROW = {"index": "HSI", "security": "0700", "issued_shares": 9e9, "faf": 1.0}

# (message, the field msgspec must name)
OUT_OF_RANGE = [
    (_split(ratio=1e308), "$.ratio"),
    (_split(ratio=0), "$.ratio"),
    (_split(ratio=-2), "$.ratio"),
    (_split(ratio=1e6 * 1.0001), "$.ratio"),
    (_split(effective=2**63), "$.effective"),
    (_split(effective=2**64 + 5), "$.effective"),
    (_split(effective=-1), "$.effective"),
    (_split(security=""), "$.security"),
    (_split(security="X" * 65), "$.security"),
    (_split(id="i" * 257), "$.id"),
    (_rights(subscription_price=1e308), "$.subscription_price"),
    (_rights(new_shares=1e300), "$.new_shares"),
    (_rights(per_held=0), "$.per_held"),
    ({"type": "special_dividend", "effective": T, "security": "0027", "amount": 1e13}, "amount"),
    ({"type": "dividend", "effective": T, "security": "0939", "amount": -1}, "$.amount"),
    (
        {"type": "dividend", "effective": T, "security": "0939", "amount": 1.0,
         "withholding_rate": 1.5},
        "$.withholding_rate",
    ),
    ({"type": "shares_change", "effective": T, "security": "1299", "issued_shares": 1e16},
     "$.issued_shares"),
    ({"type": "faf_change", "effective": T, "security": "0700", "faf": 1.01}, "$.faf"),
    ({"type": "faf_change", "effective": T, "security": "0700", "faf": 0}, "$.faf"),
    (_add(price=1e308), "$.price"),
    (_add(cap_factor=2.0), "$.cap_factor"),
    (_add(index="I" * 100), "$.index"),
    (_review([]), "$.rows"),
    (_review([ROW] * 20_001), "$.rows"),
    (_review([ROW | {"issued_shares": 1e308}]), "$.rows[0].issued_shares"),
    (_review([ROW | {"price": 0.0}]), "$.rows[0].price"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "field"), OUT_OF_RANGE)
def test_out_of_range_fields_are_refused_naming_the_field(
    message: dict[str, object], field: str
) -> None:
    for decode, encode in (
        (JSON.decode, msgspec.json.encode),
        (MSGPACK.decode, msgspec.msgpack.encode),
    ):
        try:
            data = encode(message)
        except OverflowError:  # msgpack has no integers beyond 64 bits
            continue
        with pytest.raises(
            msgspec.ValidationError, match=field.replace("$", r"\$").replace("[", r"\[")
        ):
            decode(data)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_refused_in_msgpack(bad: float) -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.ratio"):
        MSGPACK.decode(msgspec.msgpack.encode(_split(ratio=bad)))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.withholding_rate"):
        MSGPACK.decode(
            msgspec.msgpack.encode(
                {"type": "dividend", "effective": T, "security": "0939", "amount": 1.0,
                 "withholding_rate": bad}
            )
        )  # fmt: skip


def test_values_at_the_bounds_decode() -> None:
    assert JSON.decode(msgspec.json.encode(_split(ratio=1e6, effective=2**63 - 1))) == StockSplit(
        effective=2**63 - 1, security="0700", ratio=1e6
    )
    dividend = {"type": "dividend", "effective": 0, "security": "0939", "amount": 1e12}
    assert JSON.decode(msgspec.json.encode(dividend | {"withholding_rate": 1.0}))
    assert JSON.decode(msgspec.json.encode(dividend | {"withholding_rate": 0.0}))
    assert len(JSON.decode(msgspec.json.encode(_review([ROW] * 20_000))).rows) == 20_000  # type: ignore[union-attr]


# -- apply_event: defence in depth -------------------------------------------------------------


def _pipeline() -> IndexPipeline:
    class Discard:
        def write(self, levels: object) -> None:
            del levels

    return IndexPipeline(IndexCalculator(load_builtin_universe()), Discard())


def _state(calculator: IndexCalculator) -> tuple[np.ndarray, ...]:
    return (
        calculator.prices.copy(),
        calculator.divisors.copy(),
        calculator.levels.copy(),
        calculator.universe.declared.issued_shares.copy(),
    )


@pytest.mark.parametrize(
    "event",
    [
        # Built in code, so not range-checked: the core must still refuse them.
        StockSplit(effective=T, security="0700", ratio=1e308),
        StockSplit(effective=T, security="0700", ratio=1e-320),
        RightsIssue(
            effective=T, security="0005", new_shares=1e308, per_held=1, subscription_price=1e308
        ),
        SpecialDividend(effective=T, security="0027", amount=float("nan")),
    ],
    ids=["split-1e308", "split-denormal", "rights-1e308", "dividend-nan"],
)
def test_apply_event_refuses_a_non_finite_result_and_changes_nothing(event: IndexEvent) -> None:
    pipeline = _pipeline()
    before = _state(pipeline.calculator)
    with pytest.raises(EventError, match=r"finite|positive"):
        apply_event(pipeline.calculator, event)
    for was, now in zip(before, _state(pipeline.calculator), strict=True):
        np.testing.assert_array_equal(was, now)
    assert np.isfinite(pipeline.calculator.levels).all()


def test_a_dividend_at_or_above_the_price_is_refused() -> None:
    pipeline = _pipeline()
    universe = pipeline.calculator.universe
    price = float(pipeline.calculator.prices[universe.security_id("0027")])
    with pytest.raises(EventError, match="amount must be below the price"):
        apply_event(
            pipeline.calculator, SpecialDividend(effective=T, security="0027", amount=price)
        )
    changes = apply_event(
        pipeline.calculator, SpecialDividend(effective=T, security="0027", amount=price / 2)
    )
    assert changes and np.isfinite(pipeline.calculator.levels).all()


# -- events files ------------------------------------------------------------------------------


def _load_error(path: Path) -> str:
    with pytest.raises(ReferenceDataError) as caught:
        load_events(path)
    return str(caught.value)


def test_events_file_errors_name_file_and_line(tmp_path: Path) -> None:
    good = msgspec.json.encode(_split()).decode()
    first = f"{good}\n".encode()
    csv_head = b"effective,type,security,ratio\n1,stock_split,0700,2\n"
    iso = _split(effective="9999-12-31T23:59:59-14:00")
    cases = {
        "utf8.jsonl": first * 2 + b'{"type": "\xff"}\n',
        "deep.jsonl": first + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "big.jsonl": first + msgspec.json.encode(_split(ratio=1e308)) + b"\n",
        "future.jsonl": first + msgspec.json.encode(_split(effective=2**63)) + b"\n",
        "iso.jsonl": first + msgspec.json.encode(iso) + b"\n",
        "extra.csv": csv_head + b"2,stock_split,0700,2,9\n",
        "nan.csv": csv_head + b"2,stock_split,0700,nan\n",
        "field.csv": csv_head + b"2,stock_split," + b"7" * 200_000 + b",2\n",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        message = _load_error(path)
        assert message.startswith(f"{path}:"), message
        line = 3 if name == "utf8.jsonl" or name.endswith(".csv") else 2
        assert message.startswith(f"{path}:{line}: "), message
    gz = tmp_path / "events.jsonl.gz"
    gz.write_bytes(gzip.compress(b"junk"))
    assert _load_error(gz).startswith(f"{gz}: ")


def test_review_composition_rows_are_range_checked(tmp_path: Path) -> None:
    (tmp_path / "review.csv").write_text(
        "index,security,issued_shares,faf,cap_factor,prev_close\n"
        "HSI,0700,9e9,1.0,,480\nHSI,0005,1e308,1.0,,60\n"
    )
    events = tmp_path / "events.csv"
    events.write_text(f"effective,type,composition\n{T},review,review.csv\n")
    message = _load_error(events)
    assert message.startswith(f"{tmp_path / 'review.csv'}:3: ") and "issued_shares" in message


def test_sourced_events_carry_file_and_line_into_failures(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [_split(effective=T + 2), _split(effective=T + 1, security="NOPE")]
    path.write_bytes(b"\n" + b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    pending = load_sourced_events(path)
    assert [p.origin.source for p in pending if p.origin] == [f"{path}:3", f"{path}:2"]
    pipeline = _pipeline()
    pipeline.schedule(pending)
    pipeline.apply_due_events(T + 10)
    assert pipeline.stats.events_applied == 1
    [failure] = pipeline.stats.events_failed
    assert str(failure).startswith(f"{path}:3: stock_split security=NOPE")
    assert "unknown security 'NOPE'" in str(failure)
