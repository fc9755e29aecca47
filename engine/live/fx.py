"""Currency variants in the live service: FX ticks from the FX topic, variant levels out.

Each fetch's FX records are decoded into ``FxColumns`` (stable-sorted by event time) and, after
the engine call, merged with the fetch's base levels by ``CurrencyTranslator.translate`` (the
same code ``tickindex replay --fx --variants`` runs). Bad FX messages are dead-lettered with a
reason ``fx_<FxRejectReason.label>`` (``fx_undecodable``, ``fx_unknown_pair``,
``fx_non_finite_rate``, ``fx_non_positive_rate``, ``fx_bad_timestamp``), which is also their
label on the rejection and dead-letter counters, apart from the ticks' own labels.

Ordering. The translator merges base levels and FX ticks by event time within a fetch and
carries each stream's clock across fetches, so the variants equal replay's whenever fetches are
consistent time slices of both streams, as they are in steady state. While catching up on a
backlog a fetch may hold FX ticks later than the next fetch's stock ticks; those base levels then
convert at the newer rate (the translator rewrites nothing that was published).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from engine.columns import LevelColumns
from engine.currency import CurrencyTranslator, FxColumns, FxRejectReason, screen_fx
from engine.live.codec import OutgoingMessage, Record, dead_letter
from engine.live.config import ServiceConfig
from engine.universe import Universe
from engine.wire import FxTick, WireCodec
from producers.fxfile import load_variants

log = logging.getLogger(__name__)

_INT64 = np.iinfo(np.int64)


def fx_reason_label(reason: FxRejectReason) -> str:
    """Metrics and dead-letter label of a rejected FX tick: ``fx_`` + ``reason.label``."""
    return f"fx_{reason.label}"


@dataclass(frozen=True)
class FxOutput:
    """What the FX records of one fetch produced.

    Attributes
    ----------
    levels : LevelColumns
        Variant levels (index ids after the universe's), in event-time order.
    letters : list of OutgoingMessage
        Dead letters of the bad FX messages.
    rejected : dict of str to int
        Bad FX ticks per reason label (``fx_reason_label``).
    """

    levels: LevelColumns
    letters: list[OutgoingMessage]
    rejected: dict[str, int]


class FxChannel:
    """Decodes FX records and turns base levels plus FX ticks into currency variant levels.

    Parameters
    ----------
    translator : CurrencyTranslator
        Makes the variant levels; its state is what checkpoints store.
    codec : WireCodec
        Wire format of the FX topic.
    dead_letter_topic : str
        Where bad FX messages go.
    """

    def __init__(
        self, translator: CurrencyTranslator, codec: WireCodec, dead_letter_topic: str
    ) -> None:
        self.translator = translator
        self.codec = codec
        self.dead_letter_topic = dead_letter_topic
        self.received = 0

    @classmethod
    def from_config(cls, config: ServiceConfig, universe: Universe) -> FxChannel | None:
        """The channel of ``config.variants`` (None without variants).

        Raises
        ------
        ReferenceDataError
            When the variants file is invalid (names file, line and problem).
        """
        if config.variants is None:
            return None
        variants = load_variants(config.variants, universe.index_codes)
        closes = [spec.prev_close_level for spec in universe.indices]
        translator = CurrencyTranslator(variants, universe.index_codes, closes)
        return cls(translator, WireCodec(config.wire_format), config.dead_letter_topic)

    @property
    def extra_indices(self) -> list[tuple[str, float]]:
        """(code, previous close) of each variant, in index id order after the universe's."""
        return [(v.code, v.prev_close_level) for v in self.translator.variants]

    def process(self, records: Sequence[Record], levels: LevelColumns) -> FxOutput:
        """Decode one fetch's FX records and translate them with the fetch's base levels.

        Parameters
        ----------
        records : sequence of Record
            The fetch's FX-topic records (possibly none).
        levels : LevelColumns
            The base levels the engine computed for the fetch (unconflated, tick order).

        Returns
        -------
        FxOutput
        """
        fx, letters, rejected = self.decode(records)
        if letters:
            log.warning(
                "dead-lettered %d FX ticks (%s), first from %s",
                len(letters),
                ", ".join(f"{k}={v}" for k, v in sorted(rejected.items())),
                dict(letters[0].headers)["tickindex.source"].decode(),
            )
        return FxOutput(self.translator.translate(levels, fx), letters, rejected)

    def decode(
        self, records: Sequence[Record]
    ) -> tuple[FxColumns, list[OutgoingMessage], dict[str, int]]:
        """Good FX ticks (stable-sorted by ``ts_event``), dead letters and reject counts.

        ``origin`` of each tick is its row in the fetch's decoded FX ticks.
        """
        self.received += len(records)
        pairs: list[str] = []
        rates: list[float] = []
        stamps: list[int] = []
        where: list[tuple[int, int | None]] = []
        letters: list[OutgoingMessage] = []
        rejected: Counter[str] = Counter()

        def reject(at: int, reason: FxRejectReason, detail: str, within: int | None) -> None:
            label = fx_reason_label(reason)
            rejected[label] += 1
            letters.append(dead_letter(records[at], self.dead_letter_topic, label, detail, within))

        for position, record in enumerate(records):
            try:
                message = self.codec.decode_fx(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                reject(position, FxRejectReason.UNDECODABLE, str(exc), None)
                continue
            if isinstance(message, FxTick):
                pairs.append(message.pair)
                rates.append(message.rate)
                stamps.append(message.ts_event)
                where.append((position, None))
                continue
            size = len(message.pair)
            if len(message.rate) != size or len(message.ts_event) != size:
                detail = "fx_tick_batch columns differ in length"
                reject(position, FxRejectReason.UNDECODABLE, detail, None)
                continue
            pairs.extend(message.pair)
            rates.extend(message.rate)
            stamps.extend(message.ts_event)
            where.extend((position, within) for within in range(size))
        if not pairs:
            return FxColumns.empty(), letters, dict(rejected)
        pair = self.translator.pair_ids(pairs)
        rate = np.array(rates, dtype=np.float64)
        reasons = screen_fx(len(self.translator.pairs), pair, rate)
        try:
            ts = np.array(stamps, dtype=np.int64)
        except OverflowError:
            fits = [_INT64.min <= t <= _INT64.max for t in stamps]
            ts = np.array([t if ok else 0 for t, ok in zip(stamps, fits, strict=True)], np.int64)
            reasons[~np.array(fits)] = FxRejectReason.BAD_TIMESTAMP
        for row in np.flatnonzero(reasons).tolist():
            reason = FxRejectReason(int(reasons[row]))
            detail = f"{reason.label}: pair {pairs[row]!r}, rate {rates[row]!r}, ts {stamps[row]}"
            reject(where[row][0], reason, detail, where[row][1])
        fx = FxColumns(ts, pair, rate, np.arange(len(pairs), dtype=np.int64))
        fx = fx.take(reasons == FxRejectReason.ACCEPTED)
        return fx.take(np.argsort(fx.ts_event, kind="stable")), letters, dict(rejected)
