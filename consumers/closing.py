"""A base for sinks that own files: usable in ``with``, closed on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ClosingSink:
    """``with Sink(...) as sink:`` calls ``sink.close()`` on the way out, error or not."""

    def close(self) -> None:
        """Release what the sink holds; subclasses override."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
