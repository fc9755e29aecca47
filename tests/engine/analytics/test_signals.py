"""Signal rules: each condition, firing on change, restarts, the config file and its errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pytest

from engine.analytics.signal_rules import RuleSet, RuleSetError, load_rules, rules_from
from engine.analytics.signals import SignalEvaluator, SignalEvent, SignalsState
from engine.core.errors import TickIndexError
from tests.support.paths import REPO
from tests.support.seed import SEED

NAN = float("nan")
EXAMPLE = REPO / "deploy" / "analytics" / "smallcap-sleeve.toml"


def rule(when: dict[str, Any], name: str = "r", kind: str = "info") -> dict[str, Any]:
    return {"name": name, "kind": kind, "sentence": f"{name} holds", "when": when}


def evaluator(*rules: dict[str, Any]) -> SignalEvaluator:
    return SignalEvaluator(rules_from({"rules": list(rules)}))


def states(when: dict[str, Any], values: list[dict[str, float]]) -> list[bool]:
    """The rule's state after each boundary."""
    signals = evaluator(rule(when))
    out = []
    for ts, boundary in enumerate(values):
        signals.evaluate(ts, boundary)
        out.append(signals.active["r"])
    return out


def series(name: str, values: list[float]) -> list[dict[str, float]]:
    return [{name: value} for value in values]


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (">", [False, False, True, False]),
        (">=", [False, True, True, False]),
        ("<", [True, False, False, False]),
        ("<=", [True, True, False, False]),
    ],
)
def test_threshold_each_op_and_nan_is_false(op: str, expected: list[bool]) -> None:
    when = {"type": "threshold", "series": "HSI.level", "op": op, "value": 2.0}
    assert states(when, series("HSI.level", [1.0, 2.0, 3.0, NAN])) == expected
    assert states(when, [{}]) == [False]  # a missing series is not available


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("above", [False, True, False, False, False, False, False, False]),
        ("below", [False, False, False, True, False, False, False, False]),
    ],
)
def test_cross_a_value_between_consecutive_boundaries(direction: str, expected: list[bool]) -> None:
    when = {"type": "cross", "series": "X.v", "direction": direction, "value": 5.0}
    path = [4.0, 6.0, 7.0, 4.0, 5.0, NAN, 6.0, 5.0]
    # above: 4 -> 6 crosses; 5 -> NaN -> 6 does not (NaN between); 5 is not above 5.
    # below: 7 -> 4 crosses; 6 -> 5 is not below 5.
    got = states(when, series("X.v", path))
    assert got == expected, got


def test_cross_another_series() -> None:
    when = {"type": "cross", "series": "A.rs", "direction": "below", "other": "B.rs"}
    pairs = [(2.0, 1.0), (2.0, 2.0), (1.0, 3.0), (0.0, 4.0), (5.0, 4.0)]
    values = [{"A.rs": a, "B.rs": b} for a, b in pairs]
    assert states(when, values) == [False, False, True, False, False]
    assert states(when, [{"A.rs": 2.0, "B.rs": 1.0}, {"A.rs": 1.0}]) == [False, False]


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        ("rising", [1, 2, 3, 4, 4, 5, 6, 7], [False, False, True, True, False, False, True, True]),
        (
            "falling",
            [5, 4, 3, 3, 2, 1, NAN, 0],
            [False, False, True, False, False, True, False, False],
        ),
        ("rising", [1, 2, NAN, 3, 4, 5], [False, False, False, False, False, True]),
    ],
)
def test_rising_and_falling_strictly_over_n_boundaries(
    kind: str, path: list[float], expected: list[bool]
) -> None:
    when = {"type": kind, "series": "SC.rs", "intervals": 2}
    assert states(when, series("SC.rs", [float(v) for v in path])) == expected


def test_all_and_any() -> None:
    high = {"type": "threshold", "series": "A.x", "op": ">", "value": 0.0}
    low = {"type": "threshold", "series": "B.x", "op": "<", "value": 0.0}
    values = [{"A.x": a, "B.x": b} for a, b in [(1, -1), (1, 1), (-1, -1), (-1, 1), (1, NAN)]]
    assert states({"type": "all", "of": [high, low]}, values) == [True, False, False, False, False]
    assert states({"type": "any", "of": [high, low]}, values) == [True, True, True, False, True]
    nested = {"type": "any", "of": [{"type": "all", "of": [high, low]}, {**low, "value": -5.0}]}
    assert states(nested, values) == [True, False, False, False, False]


def test_fires_on_change_of_state_only_with_the_values() -> None:
    signals = evaluator(
        rule(
            {"type": "threshold", "series": "HSI.level", "op": "<", "value": 100.0},
            "low",
            "invalidation",
        )
    )
    events = [
        signals.evaluate(ts, {"HSI.level": level})
        for ts, level in enumerate([120, 90, 80, 70, 110, 105, 95])
    ]
    fired = [(e.ts_event, e.active, e.values) for batch in events for e in batch]
    assert fired == [
        (1, True, {"HSI.level": 90.0}),
        (4, False, {"HSI.level": 110.0}),
        (6, True, {"HSI.level": 95.0}),
    ]
    event = events[1][0]
    assert (event.name, event.kind, event.sentence) == ("low", "invalidation", "low holds")
    lost = signals.evaluate(7, {})  # no data: the condition stops holding, values left out
    assert [(e.active, e.values) for e in lost] == [(False, {})]


def test_non_finite_inputs_are_not_available() -> None:
    when = {"type": "threshold", "series": "X.v", "op": ">", "value": 0.0}
    assert states(when, series("X.v", [np.inf, 1.0, -np.inf])) == [False, True, False]


def random_values(seed: int, n: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.choice([-1.0, 0.0, 1.0], size=(n, 3)), axis=0)
    walk[rng.random(walk.shape) < 0.05] = np.nan
    return [{"HSI.level": a, "SC.rs": b, "HSCI_SC.pct_up": c} for a, b, c in walk.tolist()]


RULES = [
    rule(
        {
            "type": "all",
            "of": [
                {"type": "threshold", "series": "HSI.level", "op": "<", "value": 0.0},
                {"type": "falling", "series": "SC.rs", "intervals": 3},
            ],
        },
        "invalid",
        "invalidation",
    ),
    rule(
        {
            "type": "any",
            "of": [
                {
                    "type": "cross",
                    "series": "HSCI_SC.pct_up",
                    "direction": "above",
                    "other": "SC.rs",
                },
                {"type": "rising", "series": "SC.rs", "intervals": 4},
            ],
        },
        "confirm",
        "confirmation",
    ),
    rule({"type": "cross", "series": "HSI.level", "direction": "below", "value": -2.0}, "cross"),
]


def reference_states(values: list[dict[str, float]]) -> pd.DataFrame:
    """Each rule's condition at each boundary, from pandas on the whole series."""
    frame = pd.DataFrame(values)
    hsi, rs, up = frame["HSI.level"], frame["SC.rs"], frame["HSCI_SC.pct_up"]

    def strictly(diff: pd.Series, n: int) -> pd.Series:
        return diff.rolling(n).min().gt(0) & diff.rolling(n).count().eq(n)

    falling3 = strictly(-rs.diff(), 3)
    rising4 = strictly(rs.diff(), 4)
    crossed = (up.shift() <= rs.shift()) & (up > rs)
    below = (hsi.shift() >= -2.0) & (hsi < -2.0)
    return pd.DataFrame(
        {"invalid": (hsi < 0) & falling3, "confirm": crossed | rising4, "cross": below}
    )


def transitions(expected: pd.DataFrame) -> list[tuple[int, str, bool]]:
    out = []
    before = dict.fromkeys(expected.columns, False)
    for ts, row in enumerate(expected.to_dict("records")):
        for name in expected.columns:
            if bool(row[name]) != before[name]:
                out.append((ts, name, bool(row[name])))
                before[name] = bool(row[name])
    return out


def fired(events: list[list[SignalEvent]]) -> list[tuple[int, str, bool]]:
    return [(e.ts_event, e.name, e.active) for batch in events for e in batch]


@pytest.mark.parametrize("case", range(3))
def test_events_are_the_reference_transitions_and_survive_a_restart(case: int) -> None:
    seed = SEED + 1700 + case
    print(f"signal stream seed {seed}")
    values = random_values(seed, 600)
    expected = transitions(reference_states(values)[["invalid", "confirm", "cross"]])
    assert len(expected) > 10
    whole = evaluator(*RULES)
    assert fired([whole.evaluate(ts, v) for ts, v in enumerate(values)]) == expected
    rng = np.random.default_rng(seed)
    for cut in sorted(rng.choice(len(values), 25, replace=False).tolist()):
        first = evaluator(*RULES)
        events = [first.evaluate(ts, v) for ts, v in enumerate(values[:cut])]
        payload = msgspec.json.encode(first.capture())
        state = msgspec.json.decode(payload, type=SignalsState)
        assert state == first.capture() and msgspec.json.encode(state) == payload
        resumed = evaluator(*RULES)
        resumed.restore(state)
        events += [resumed.evaluate(ts, v) for ts, v in enumerate(values[cut:], start=cut)]
        assert fired(events) == expected


def test_restore_matches_by_name_and_trims_history() -> None:
    falling = {"type": "falling", "series": "X.v", "intervals": 3}
    first = evaluator(
        rule(falling, "f"), rule({"type": "rising", "series": "Y.v", "intervals": 1}, "y")
    )
    for ts, v in enumerate([9.0, 8.0, 7.0, 6.0]):
        first.evaluate(ts, {"X.v": v, "Y.v": float(ts)})
    state = first.capture()
    assert state.active == ["f", "y"] and state.history["X.v"] == [9.0, 8.0, 7.0, 6.0]
    shorter = evaluator(rule({**falling, "intervals": 1}, "f"), rule(falling, "new"))
    shorter.restore(state)
    assert shorter.active == {"f": True, "new": False}
    assert shorter.capture().history == {"X.v": [9.0, 8.0, 7.0, 6.0]}  # Y.v is gone
    # f still holds (6 -> 5): not repeated; new sees 8, 7, 6, 5 fall from the saved history.
    assert [(e.name, e.active) for e in shorter.evaluate(4, {"X.v": 5.0})] == [("new", True)]


def test_rule_set_lists_the_series_it_needs() -> None:
    rules = rules_from({"rules": RULES})
    assert rules.series() == ("HSCI_SC.pct_up", "HSI.level", "SC.rs")
    assert SignalEvaluator(rules).series == rules.series()


def test_example_rule_set_loads_and_fires() -> None:
    rules = load_rules(EXAMPLE)
    assert [(r.name, r.kind) for r in rules.rules] == [
        ("smallcap-sleeve-invalidated", "invalidation"),
        ("smallcap-sleeve-confirmed", "confirmation"),
        ("smallcap-liquidity-warning", "info"),
    ]
    assert rules.series() == (
        "*.turnover_ratio",
        "HSCI_SC.pct_up",
        "HSI.level",
        "SMALLCAP_VS_HSI.rs",
    )
    signals = SignalEvaluator(rules)
    got = []
    for ts in range(7):
        values = {
            "HSI.level": 23_000.0,
            "SMALLCAP_VS_HSI.rs": 100.0 + ts,
            "HSCI_SC.pct_up": 65.0,
            "*.turnover_ratio": 0.4 if ts < 3 else 0.9,
        }
        got += [(e.ts_event, e.name, e.active) for e in signals.evaluate(ts, values)]
    assert got == [
        (0, "smallcap-liquidity-warning", True),
        (3, "smallcap-liquidity-warning", False),
        (5, "smallcap-sleeve-confirmed", True),
    ]


def test_json_rule_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": RULES}))
    assert load_rules(path) == rules_from({"rules": RULES}) and isinstance(
        load_rules(path), RuleSet
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"kind": "warning"}, r"rule 'bad'.*Invalid enum value 'warning'.*kind"),
        (
            {"when": {"type": "threshold", "series": "X.v", "op": "=>", "value": 1.0}},
            r"rule 'bad'.*'=>'",
        ),
        ({"when": {"type": "rising", "series": "X.v", "intervals": 0}}, r"rule 'bad'.*>= 1"),
        ({"when": {"type": "falling", "series": "X.v", "intervals": -2}}, r"rule 'bad'.*>= 1"),
        ({"when": {"type": "above", "series": "X.v"}}, r"rule 'bad'.*'above'"),
        (
            {"when": {"type": "cross", "series": "X.v", "direction": "above"}},
            "exactly one of value",
        ),
        (
            {"when": {"type": "cross", "series": "X.v", "direction": "up", "value": 1.0}},
            r"rule 'bad'.*'up'",
        ),
        ({"when": {"type": "all", "of": []}}, r"rule 'bad'.*length >= 1"),
        (
            {"when": {"type": "threshold", "series": "level", "op": "<", "value": 1.0}},
            "<NAME>.<field>",
        ),
        ({"when": {"type": "threshold", "series": "X.v", "op": "<", "value": NAN}}, "finite"),
        ({"colour": "red"}, r"rule 'bad'.*unknown field `colour`"),
        ({"name": ""}, r"rule #2.*length >= 1"),
    ],
)
def test_invalid_rules_are_refused_naming_the_rule(bad: dict[str, Any], message: str) -> None:
    good = rule({"type": "threshold", "series": "X.v", "op": "<", "value": 1.0}, "good")
    broken = {**rule({"type": "threshold", "series": "X.v", "op": "<", "value": 1.0}, "bad"), **bad}
    with pytest.raises(RuleSetError, match=message) as caught:
        rules_from({"rules": [good, broken]}, "rules.toml")
    assert str(caught.value).startswith("rules.toml: ")
    assert isinstance(caught.value, TickIndexError) and not caught.value.retriable


def test_duplicate_names_and_unknown_top_level_keys_are_refused() -> None:
    good = rule({"type": "threshold", "series": "X.v", "op": "<", "value": 1.0}, "same")
    with pytest.raises(RuleSetError, match="unique: same"):
        rules_from({"rules": [good, good]})
    with pytest.raises(RuleSetError, match="unknown field `signals`"):
        rules_from({"signals": []})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("rules.toml", "[[rules]\n", "not valid toml"),
        ("rules.json", "{", "not valid json"),
        ("rules.toml", b"\xff", "not UTF-8"),
        (
            "rules.toml",
            '[[rules]]\nname = "n"\nkind = "info"\nsentence = ""\n'
            'when = { type = "threshold", series = "A.b", op = "<", value = nan }\n',
            "rule 'n'",
        ),
    ],
)
def test_unreadable_rule_files_are_refused(
    tmp_path: Path, name: str, text: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(RuleSetError, match=message):
        load_rules(path)
    with pytest.raises(RuleSetError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")
