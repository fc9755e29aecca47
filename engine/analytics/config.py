"""The analytics settings: one TOML (or JSON) file, every key optional.

Example (``deploy/analytics/smallcap-sleeve.toml`` adds signal rules)::

    interval_ms = 1000          # figures at most once a second of event time, and at the close
    sample_ms = 60000           # the return grid of volatility, beta and correlation
    window = 120                # sampled returns in the rolling volatility
    indices = ["HSI", "HSCI_SC", "HSTECH"]    # default: every index
    watch = ["0700.HK", "9988.HK"]            # securities of *.turnover_ratio
    movers = 5
    turnover_days = 20
    reference_highs = { HSI = 33484.08 }      # e.g. the 52-week high
    [[pairs]]
    name = "SMALLCAP_VS_HSI"
    a = "HSCI_SC"
    b = "HSI"
    sleeve_notional = 50_000_000.0

Without ``pairs`` the two default pairs (HS SmallCap vs HSI, HS TECH vs HSI) are taken where
the universe has their indices; pairs given explicitly must fit it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec

from engine.analytics.errors import AnalyticsConfigError
from engine.analytics.pairs import DEFAULT_PAIRS, PairConfig
from engine.analytics.signal_rules import Rule, rules_from
from engine.core.settings_file import read_settings_file

DAY_MS = 86_400_000


class AnalyticsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the analytics compute and how often.

    Attributes
    ----------
    interval_ms : int
        Event time between two figures of an index (and its pairs and signals).
    sample_ms : int
        Step of the sampled-return grid.
    window : int
        Sampled returns in the rolling volatility.
    indices : tuple of str or None
        Index codes with figures; None: every index.
    watch : tuple of str
        Securities whose turnover the ``*.turnover_ratio`` series sums.
    movers : int
        Top and bottom constituents per index by contribution.
    turnover_days : int
        Past trading days of the average turnover.
    reference_highs : dict of str to float
        Reference high per index code (``drawdown_ref``).
    pairs : tuple of PairConfig or None
        Pairs; None: the default pairs the universe has.
    rules : tuple of Rule
        Signal rules.
    """

    interval_ms: Annotated[int, msgspec.Meta(ge=1, le=DAY_MS)] = 1000
    sample_ms: Annotated[int, msgspec.Meta(ge=1, le=DAY_MS)] = 60_000
    window: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 120
    indices: tuple[str, ...] | None = None
    watch: tuple[str, ...] = ()
    movers: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 5
    turnover_days: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    reference_highs: dict[str, float] = {}
    pairs: tuple[PairConfig, ...] | None = None
    rules: tuple[Rule, ...] = ()

    def pairs_in(self, index_codes: tuple[str, ...]) -> tuple[PairConfig, ...]:
        """The configured pairs, or the default pairs whose indices are all in ``index_codes``.

        Raises
        ------
        AnalyticsConfigError
            When a configured pair names an index not in ``index_codes``.
        """
        known = set(index_codes)
        if self.pairs is None:
            return tuple(p for p in DEFAULT_PAIRS if {p.a, p.b, p.hedge_with} <= known)
        for pair in self.pairs:
            missing = sorted({pair.a, pair.b, pair.hedge_with} - known)
            if missing:
                raise AnalyticsConfigError(f"pair {pair.name}: unknown index {missing[0]!r}")
        return self.pairs


def analytics_config_from(data: Any, source: str = "analytics config") -> AnalyticsConfig:
    """An ``AnalyticsConfig`` from decoded TOML/JSON data.

    Raises
    ------
    AnalyticsConfigError
        Naming ``source`` and what is wrong (a rule by its name).
    """
    if not isinstance(data, dict):
        raise AnalyticsConfigError(f"{source}: expected a table of settings")
    settings = dict(data)
    rules = rules_from({"rules": settings.pop("rules", [])}, source).rules
    try:
        config = msgspec.convert(settings, AnalyticsConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise AnalyticsConfigError(f"{source}: {exc}") from None
    return msgspec.structs.replace(config, rules=rules)


def load_analytics_config(path: str | Path) -> AnalyticsConfig:
    """Read the analytics settings from a TOML file (``.toml``) or else JSON.

    Raises
    ------
    AnalyticsConfigError
        When the file cannot be read or decoded, or a setting is invalid (named).
    """
    data = read_settings_file(path, AnalyticsConfigError, "analytics config")
    return analytics_config_from(data, str(path))
