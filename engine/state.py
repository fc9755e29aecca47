"""Engine state checkpoints: everything needed to resume exactly where a run stopped."""

from __future__ import annotations

import msgspec
import numpy as np

from engine.calculator import IndexCalculator
from engine.errors import TickIndexError
from engine.sequencing import SequenceGuard

STATE_VERSION = 1


class StateMismatchError(TickIndexError):
    """A checkpoint was taken on other reference data than the one loaded now."""


class EngineState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A checkpoint of the engine, serialisable with msgspec (MessagePack keeps floats exact).

    Attributes
    ----------
    universe_fingerprint : str
        Which reference data the state belongs to (``Universe.fingerprint()``).
    prices : list of float
        Last price per security id.
    divisors : list of float
        Divisor per index id.
    index_seq : list of int
        Last published sequence number per index id.
    last_tick_seq : list of int
        Highest tick sequence number seen per security id (-1 for none).
    offsets : dict of str to int
        Next input offset per ``topic:partition`` (filled by the live service).
    ts_checkpoint : int
        Wall-clock nanoseconds when the checkpoint was taken.
    version : int
        Format version of this structure.
    """

    universe_fingerprint: str
    prices: list[float]
    divisors: list[float]
    index_seq: list[int]
    last_tick_seq: list[int]
    offsets: dict[str, int] = {}
    ts_checkpoint: int = 0
    version: int = STATE_VERSION


def capture_state(
    calculator: IndexCalculator,
    guard: SequenceGuard,
    offsets: dict[str, int] | None = None,
    ts_checkpoint: int = 0,
) -> EngineState:
    """Snapshot of a calculator and its sequence guard."""
    return EngineState(
        universe_fingerprint=calculator.universe.fingerprint(),
        prices=calculator.prices.tolist(),
        divisors=calculator.divisors.tolist(),
        index_seq=calculator.seq.tolist(),
        last_tick_seq=guard.last_seq.tolist(),
        offsets=dict(offsets or {}),
        ts_checkpoint=ts_checkpoint,
    )


def restore_state(calculator: IndexCalculator, guard: SequenceGuard, state: EngineState) -> None:
    """Put a snapshot back into a calculator built on the same universe.

    Raises
    ------
    StateMismatchError
        When the snapshot was taken on different reference data.
    """
    expected = calculator.universe.fingerprint()
    if state.universe_fingerprint != expected:
        raise StateMismatchError(
            f"checkpoint belongs to reference data {state.universe_fingerprint[:12]}, "
            f"loaded reference data is {expected[:12]}"
        )
    calculator.restore(
        prices=np.array(state.prices, dtype=np.float64),
        divisors=np.array(state.divisors, dtype=np.float64),
        seq=np.array(state.index_seq, dtype=np.int64),
    )
    guard.last_seq[:] = np.array(state.last_tick_seq, dtype=np.int64)
