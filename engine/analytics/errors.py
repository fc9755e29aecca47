"""The analytics' errors: a configuration that does not fit, a state that does not restore."""

from __future__ import annotations

from engine.core.errors import TickIndexError


class AnalyticsConfigError(TickIndexError):
    """An analytics configuration that is invalid or does not fit the universe (names what)."""


class AnalyticsStateError(TickIndexError):
    """Captured analytics state that does not fit the object restoring it (corrupt or foreign)."""
