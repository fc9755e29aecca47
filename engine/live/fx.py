"""Currency variants in the live service: FX ticks from the FX topic, variant levels out.

Each fetch's FX records are decoded into ``FxColumns`` (stable-sorted by event time) and, after
the engine call, merged with the fetch's base levels by ``CurrencyTranslator.translate`` (the
same code ``tickindex replay --fx --variants`` runs). Bad FX messages are dead-lettered with a
reason ``fx_<FxRejectReason.label>`` (``fx_undecodable``, ``fx_unknown_pair``,
``fx_non_finite_rate``, ``fx_non_positive_rate``, ``fx_rate_out_of_range``,
``fx_bad_timestamp`` for a time outside 1..2**63-1), which is also their
label on the rejection and dead-letter counters, apart from the ticks' own labels.

Ordering. The translator merges base levels and FX ticks by event time and releases only what
no later input can change (``engine.currency.translator``, watermarks): after each fetch
``observe`` notes
whether each stream is caught up (the consumer's position at the highwater on all its partitions,
the watermark then +infinity), and until it is, variant levels wait at the other stream's latest
event time. So while both topics hold a backlog (startup, restart, lag) a fetch holding FX ticks
later than the next fetch's stock ticks changes nothing: the variants equal replay's, whatever
the fetch boundaries (given FX ticks in event-time order on the topic, as in replay's file).
Base levels are published at once; only variant levels wait. With ``read_committed`` an open
transaction on an input topic keeps it from being caught up until the transaction ends.

Memory. Only the stream running ahead has rows waiting (40 bytes each in memory, about 30 in a
checkpoint, which carries them). ``throttle`` pauses that stream's partitions while more than
``max_pending`` rows wait, so at most ``max_pending`` plus one fetch's rows wait: a fetch of
``max_batch_ticks`` records adds at most that many base levels times the indices with variants
a tick moves, or that many FX messages times the FX ticks per message; the other stream is read
meanwhile and never paused by this. A checkpoint has to fit the producer's request size (1 MiB
by default): with the defaults (5,000 and 20,000), ticks moving one index with variants and one
FX tick per message, the waiting rows take at most some 750 kB of it; with more indices with
variants per tick or FX batch messages, lower ``max_batch_ticks`` accordingly.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.currency.translator import CurrencyTranslator, FxColumns, FxRejectReason, screen_fx
from engine.currency.variant_files import load_variants
from engine.kernel.columns import LevelColumns
from engine.live.codec import OutgoingMessage, Record, int64_column
from engine.live.config import ServiceConfig
from engine.live.dead_letters import DEAD_LETTER_MAX_BYTES, dead_letter
from engine.refdata.universe import Universe
from engine.wire import FxTick, WireCodec

log = logging.getLogger(__name__)

MAX_PENDING = 5_000


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
    tick_topic, fx_topic : str
        The streams' topics, for ``observe`` and ``throttle``.
    max_pending : int
        Rows that may wait before ``throttle`` pauses the stream running ahead.
    dead_letter_max_bytes : int
        Bound of one dead-letter record (``engine.live.dead_letters``).

    Attributes
    ----------
    base_caught_up, fx_caught_up : bool
        The streams' state at the last ``observe`` (True before any: nothing waits).
    paused : Counter of str
        How often ``throttle`` paused each topic.
    peak_pending : int
        Most rows ever waiting after a fetch.
    """

    def __init__(
        self,
        translator: CurrencyTranslator,
        codec: WireCodec,
        dead_letter_topic: str,
        *,
        tick_topic: str = "ticks",
        fx_topic: str = "fx-ticks",
        max_pending: int = MAX_PENDING,
        dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES,
    ) -> None:
        self.translator = translator
        self.codec = codec
        self.dead_letter_topic = dead_letter_topic
        self.tick_topic, self.fx_topic = tick_topic, fx_topic
        self.max_pending = max_pending
        self.max_bytes = dead_letter_max_bytes
        self.received = 0
        self.base_caught_up = self.fx_caught_up = True
        self.paused: Counter[str] = Counter()
        self.peak_pending = 0
        self._held: str | None = None

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
        return cls(
            translator,
            WireCodec(config.wire_format),
            config.dead_letter_topic,
            tick_topic=config.tick_topic,
            fx_topic=config.fx_topic,
            dead_letter_max_bytes=config.dead_letter_max_bytes,
        )

    @property
    def extra_indices(self) -> list[tuple[str, float]]:
        """(code, previous close) of each variant, in index id order after the universe's."""
        return [(v.code, v.prev_close_level) for v in self.translator.variants]

    async def observe(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> bool:
        """After a fetch: note which streams are caught up (``base_caught_up``, ``fx_caught_up``).

        A stream is caught up when the consumer's position is at the highwater of each of its
        partitions (a partition not fetched yet has no highwater: not caught up).

        Parameters
        ----------
        consumer : AIOKafkaConsumer
            The service's consumer, right after ``getmany``.
        partitions : sequence of TopicPartition
            Every assigned partition (those of other topics are ignored).

        Returns
        -------
        bool
            Whether waiting variant levels can go out now, even if the fetch brought nothing.
        """

        async def caught_up(topic: str) -> bool:
            for tp in partitions:
                if tp.topic == topic:
                    highwater = consumer.highwater(tp)
                    if highwater is None or await consumer.position(tp) < highwater:
                        return False
            return True

        self.base_caught_up = await caught_up(self.tick_topic)
        self.fx_caught_up = await caught_up(self.fx_topic)
        flags = {"base_caught_up": self.base_caught_up, "fx_caught_up": self.fx_caught_up}
        return self.translator.releasable(**flags)

    def throttle(self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
        """Before a fetch: pause the topic running ahead while too much of it waits, else resume.

        Only one stream can have rows waiting, and they wait for the other one, which goes on.

        Parameters
        ----------
        consumer : AIOKafkaConsumer
            The service's consumer; the tick and FX partitions are paused or resumed.
        partitions : sequence of TopicPartition
            Every assigned partition (those of other topics are left alone).
        """
        base, fx = self.translator.pending
        held = self.tick_topic if base > self.max_pending else None
        held = self.fx_topic if fx > self.max_pending else held
        if held != self._held:
            if held is not None:
                self.paused[held] += 1
                log.info("%d base levels, %d FX ticks wait: pausing %s", base, fx, held)
            else:
                log.info("waiting rows below %d: resuming %s", self.max_pending, self._held)
            self._held = held
        for topic in (self.tick_topic, self.fx_topic):
            tps = [tp for tp in partitions if tp.topic == topic]
            if topic == held:
                consumer.pause(*tps)
            else:
                consumer.resume(*tps)

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
            Variant levels up to the watermark (see ``observe``), earlier waiting ones first.
        """
        fx, letters, rejected = self.decode(records)
        if letters:
            log.warning(
                "dead-lettered %d FX ticks (%s), first from %s",
                len(letters),
                ", ".join(f"{k}={v}" for k, v in sorted(rejected.items())),
                dict(letters[0].headers)["tickindex.source"].decode(),
            )
        flags = {"base_caught_up": self.base_caught_up, "fx_caught_up": self.fx_caught_up}
        variants = self.translator.translate(levels, fx, **flags)
        self.peak_pending = max(self.peak_pending, sum(self.translator.pending))
        return FxOutput(variants, letters, rejected)

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
            letter = dead_letter(
                records[at], self.dead_letter_topic, label, detail, within, max_bytes=self.max_bytes
            )
            letters.append(letter)

        for position, record in enumerate(records):
            try:
                message = self.codec.decode_fx(record.value or b"")
            except Exception as exc:  # whatever the bytes (RecursionError too), never raise
                detail = str(exc) if isinstance(exc, msgspec.MsgspecError) else repr(exc)
                reject(position, FxRejectReason.UNDECODABLE, detail, None)
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
        ts, _ = int64_column(stamps)  # a time beyond int64 is 0 there: a bad timestamp
        reasons[ts <= 0] = FxRejectReason.BAD_TIMESTAMP
        for row in np.flatnonzero(reasons).tolist():
            reason = FxRejectReason(int(reasons[row]))
            detail = f"{reason.label}: pair {pairs[row]!r}, rate {rates[row]!r}, ts {stamps[row]}"
            reject(where[row][0], reason, detail, where[row][1])
        fx = FxColumns(ts, pair, rate, np.arange(len(pairs), dtype=np.int64))
        fx = fx.take(reasons == FxRejectReason.ACCEPTED)
        return fx.take(np.argsort(fx.ts_event, kind="stable")), letters, dict(rejected)
