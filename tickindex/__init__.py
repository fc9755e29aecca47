"""tickindex: a real-time stock index engine.

The public Python API, keyed by security and index codes (the engine's integer ids stay
inside):

- ``load_universe``: an index family from reference files, or the built-in Hang Seng family;
- ``Engine``: apply ticks ``(ts_event, security code, price)``, get every level they move;
- ``replay``: a tick file or in-memory ticks through the engine, the levels of
  ``tickindex replay`` in memory (``ReplayResult``, ``Levels``), and the daily bars and
  analytics records when asked; each as an Arrow table or a pandas/polars DataFrame
  (``to_arrow``, ``to_pandas``, ``to_polars``; ``Bars``);
- ``replay_batches``: the same levels streamed as Arrow record batches, for files larger
  than memory;
- the wire formats of the Kafka service (``Tick``, ``TickBatch``, ``IndexLevel``, ...) and
  the errors raised (``TickIndexError`` is the base of all of them).

Everything else (``engine``, ``producers``, ``consumers``, ``tickindex.cli``) is internal.

``Engine``, ``Levels``, ``Bars``, ``replay``... are imported when first used
(``tickindex.replay`` imports the replay machinery, ``replay_batches`` pyarrow): importing the
package, as every ``tickindex`` command does, loads neither the replay nor pyarrow or pandas.
"""

import importlib
from typing import TYPE_CHECKING

from consumers.levelfile import LevelRecord
from engine.core.errors import TickIndexError
from engine.refdata.universe import Universe
from engine.wire import FxTick, FxTickBatch, IndexLevel, IndexLevels, Tick, TickBatch, WireCodec
from tickindex.errors import BadTickError, UnknownCodeError
from tickindex.reference_data import load_universe

if TYPE_CHECKING:
    from tickindex.frames import Bars
    from tickindex.index_engine import Engine
    from tickindex.levels import Levels
    from tickindex.replay_api import ReplayResult, replay
    from tickindex.replay_stream import replay_batches

__all__ = [
    "BadTickError",
    "Bars",
    "Engine",
    "FxTick",
    "FxTickBatch",
    "IndexLevel",
    "IndexLevels",
    "LevelRecord",
    "Levels",
    "ReplayResult",
    "Tick",
    "TickBatch",
    "TickIndexError",
    "Universe",
    "UnknownCodeError",
    "WireCodec",
    "load_universe",
    "replay",
    "replay_batches",
]

_LAZY = {
    "Bars": "tickindex.frames",
    "Engine": "tickindex.index_engine",
    "Levels": "tickindex.levels",
    "ReplayResult": "tickindex.replay_api",
    "replay": "tickindex.replay_api",
    "replay_batches": "tickindex.replay_stream",
}
"""Public names imported on first use, and their modules."""


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
