"""One error tree for tickindex; ``retriable`` says whether trying again can help."""

from __future__ import annotations


class TickIndexError(Exception):
    """Base of every error tickindex raises on purpose.

    Attributes
    ----------
    retriable : bool
        True when the same operation may succeed later (a broker hiccup), False when the input
        itself is wrong and must be fixed.
    """

    retriable: bool = False


class FileError(TickIndexError):
    """A problem in a file, named as ``FILE:LINE: problem`` (or ``FILE: problem``).

    Parameters
    ----------
    path : str
        The file.
    line : int | None
        1-based line number in that file, None when the problem is the file as a whole.
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


class ReferenceDataError(FileError):
    """A reference data file (indices, composition, calendar, variants, events) is unusable."""


class TickInputError(TickIndexError):
    """A tick source (file or stream) cannot be read at all (as opposed to one bad tick)."""


class CappingError(TickIndexError):
    """A weight cap cannot be met (too few constituents for the cap).

    Attributes
    ----------
    index_code : str | None
        The index whose cap fails, when known.
    """

    def __init__(self, message: str, index_code: str | None = None) -> None:
        self.index_code = index_code
        super().__init__(message)


class BrokerError(TickIndexError):
    """The Kafka broker cannot be reached or refused an operation; trying later may help."""

    retriable = True


class InputFileError(FileError, TickInputError):
    """One row of a tick or FX file is unusable and the user asked for strict reading, or the
    file as a whole cannot be read (not gzip, truncated, not a file)."""


class EventError(TickIndexError):
    """A maintenance event cannot be applied (unknown security or index, bad price, ...)."""


class RefusedRecordsError(TickIndexError):
    """A failure to publish that may name the records Kafka refused (by digest), so that a
    retry can leave those out; ``retriable`` is set per instance."""

    def __init__(
        self, message: str, retriable: bool = False, refused: frozenset[bytes] = frozenset()
    ) -> None:
        self.retriable = retriable
        self.refused = refused
        super().__init__(message)


class DeliveryError(RefusedRecordsError):
    """Kafka did not accept a record the service publishes (a level, checkpoint or transaction).

    Parameters
    ----------
    message : str
        What was not delivered, where, and Kafka's error.
    retriable : bool
        True when sending again may succeed (a broker hiccup), False when Kafka refuses the
        record itself (e.g. larger than the topic's ``max.message.bytes``).
    refused : frozenset of bytes
        Digests (``engine.live.kafka.output.record_identity``) of the records Kafka refused.
    """
