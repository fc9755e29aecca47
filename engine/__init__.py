"""tickindex calculation core: synchronous, pure numpy, shared by live, replay and tests."""

from engine.calculator import IndexCalculator, LevelUpdates
from engine.errors import ReferenceDataError, TickIndexError, TickInputError
from engine.reference_data import load_universe
from engine.universe import IndexSpec, Universe

__all__ = [
    "IndexCalculator",
    "IndexSpec",
    "LevelUpdates",
    "ReferenceDataError",
    "TickIndexError",
    "TickInputError",
    "Universe",
    "load_universe",
]
