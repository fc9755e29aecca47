"""Signal rules: what a config file may say, checked when it is loaded.

A rule set is a TOML (or JSON) file of ``[[rules]]``, each with a ``name``, a ``kind``
(``confirmation``, ``invalidation`` or ``info``), a human ``sentence`` and a condition ``when``.
A condition is a table whose ``type`` is one of:

=============  ==============================================================================
``type``       holds at a boundary when
=============  ==============================================================================
``threshold``  ``series op value``, ``op`` one of ``>``, ``>=``, ``<``, ``<=``
``cross``      ``series`` crossed ``direction`` (``above``/``below``) a ``value`` or the series
               ``other`` between the previous boundary and this one: above is
               ``prev <= ref_prev and now > ref_now``, below ``prev >= ref_prev and now < ref_now``
``rising``     ``series`` rose strictly at each of the last ``intervals`` boundaries
``falling``    ``series`` fell strictly at each of the last ``intervals`` boundaries
``all``        every condition of ``of`` holds
``any``        at least one condition of ``of`` holds
=============  ==============================================================================

Series are named ``<NAME>.<field>``: an index (``HSI.level``, ``HSCI_SC.pct_up``), a pair
(``SMALLCAP_VS_HSI.rs``) or a security (``0700.turnover_ratio``; ``*.turnover_ratio`` is the
watched securities taken together, as the caller supplies it). The field is what follows the
last ``.``. For example::

    [[rules]]
    name = "smallcap-invalidated"
    kind = "invalidation"
    sentence = "HSI below 25,000 while SmallCap relative strength falls"
    when = { type = "all", of = [
        { type = "threshold", series = "HSI.level", op = "<", value = 25000.0 },
        { type = "falling", series = "SMALLCAP_VS_HSI.rs", intervals = 3 },
    ] }
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from engine.analytics.errors import AnalyticsConfigError
from engine.core.settings_file import read_settings_file

MAX_INTERVALS = 100_000
"""Longest rising/falling window, in boundaries (history is kept per boundary)."""


class RuleSetError(AnalyticsConfigError):
    """A signal rule set is invalid (unknown key or kind, bad op, window < 1); names the rule."""


def _check_series(name: str) -> None:
    owner, dot, field = name.rpartition(".")
    if not (owner and dot and field):
        raise ValueError(f"series {name[:80]!r} must be <NAME>.<field>")


def _check_finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")


class Threshold(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="threshold"):
    """``series op value``."""

    series: str
    op: Literal[">", ">=", "<", "<="]
    value: float

    def __post_init__(self) -> None:
        _check_series(self.series)
        _check_finite(self.value)


class Cross(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="cross"):
    """``series`` crosses ``direction`` a ``value`` or another series (``other``), not both."""

    series: str
    direction: Literal["above", "below"]
    value: float | None = None
    other: str | None = None

    def __post_init__(self) -> None:
        _check_series(self.series)
        if (self.value is None) == (self.other is None):
            raise ValueError("a cross needs exactly one of value and other")
        if self.value is not None:
            _check_finite(self.value)
        if self.other is not None:
            _check_series(self.other)


Intervals = Annotated[int, msgspec.Meta(ge=1, le=MAX_INTERVALS)]


class Rising(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="rising"):
    """``series`` rose strictly at each of the last ``intervals`` boundaries."""

    series: str
    intervals: Intervals

    def __post_init__(self) -> None:
        _check_series(self.series)


class Falling(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="falling"):
    """``series`` fell strictly at each of the last ``intervals`` boundaries."""

    series: str
    intervals: Intervals

    def __post_init__(self) -> None:
        _check_series(self.series)


class AllOf(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="all"):
    """Every condition of ``of`` holds."""

    of: Annotated[tuple[Condition, ...], msgspec.Meta(min_length=1)]


class AnyOf(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="any"):
    """At least one condition of ``of`` holds."""

    of: Annotated[tuple[Condition, ...], msgspec.Meta(min_length=1)]


Condition = Threshold | Cross | Rising | Falling | AllOf | AnyOf
Kind = Literal["confirmation", "invalidation", "info"]


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A signal: it fires when ``when`` starts or stops holding."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    kind: Kind
    sentence: str
    when: Condition


class RuleSet(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The rules of one config file (names unique)."""

    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        names = [rule.name for rule in self.rules]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"rule names must be unique: {', '.join(duplicated)}")

    def series(self) -> tuple[str, ...]:
        """Every series the rules read, sorted: the caller computes only those."""
        return tuple(sorted({name for rule in self.rules for name in condition_series(rule.when)}))


def condition_series(condition: Condition) -> tuple[str, ...]:
    """The series a condition reads, in order of appearance (repeats kept)."""
    match condition:
        case AllOf(of=parts) | AnyOf(of=parts):
            return tuple(name for part in parts for name in condition_series(part))
        case Cross(series=series, other=other) if other is not None:
            return (series, other)
        case _:
            return (condition.series,)


_RULE_AT = re.compile(r"\$\.rules\[(\d+)\]")


def rules_from(data: Any, source: str = "rules") -> RuleSet:
    """A ``RuleSet`` from decoded TOML/JSON data.

    Raises
    ------
    RuleSetError
        Naming ``source`` and the rule (by name when it has one) and what is wrong.
    """
    try:
        return msgspec.convert(data, RuleSet)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _RULE_AT.search(message)
        if found is None:
            raise RuleSetError(f"{source}: {message}") from None
        raise RuleSetError(f"{source}: {_rule_label(data, int(found[1]))}: {message}") from None


def _rule_label(data: Any, position: int) -> str:
    rules = data.get("rules") if isinstance(data, dict) else None
    rule = rules[position] if isinstance(rules, list) and position < len(rules) else None
    name = rule.get("name") if isinstance(rule, dict) else None
    if isinstance(name, str) and name:
        return f"rule {name[:80]!r}"
    return f"rule #{position + 1}"


def load_rules(path: str | Path) -> RuleSet:
    """Read a rule set from a TOML file (``.toml``) or else JSON.

    Raises
    ------
    RuleSetError
        When the file cannot be read or decoded, or a rule is invalid (named in the message).
    """
    data = read_settings_file(path, RuleSetError, "rule set")
    return rules_from(data, str(path))
