"""Fetched Kafka records without an aiokafka ``ConsumerRecord`` per message.

For every message ``getmany`` hands out, aiokafka builds a ``ConsumerRecord`` dataclass: eleven
fields set in Python, the headers copied into a tuple, every one an object the garbage collector
tracks. On single-tick messages that costs as much as the engine spends on the tick. The service
reads five of those fields, so ``use_fetched_records`` makes one consumer hand out
``FetchedRecord`` structs instead, built in C and not tracked by the collector.

It relies on two aiokafka internals, checked with aiokafka 0.11 to 0.14 (``CHECKED_AIOKAFKA``):
the fetcher keeps each partition's fetched data in ``Fetcher._records`` (one ``FetchResult`` per
partition, holding a ``PartitionRecords``), and ``PartitionRecords`` builds each handed-out
record with ``_consumer_record(tp, record)``. Every fetch result stored on this consumer gets its
own record builder; batch decoding, CRC checks, offsets, control batches and aborted
transactions stay aiokafka's. On another aiokafka version, or when the internals are not as
expected, the consumer is left as it is (with a warning): ``ConsumerRecord`` has the same
fields, so the service only loses the speed.

Speed-up 1.33x and 1.44x (488k vs 367k, 460k vs 319k ticks/s with vs without, fastest of 5
rounds, two runs of ``tickindex bench --kafka --mechanisms``); ``fetched_records = false`` is
without.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections import OrderedDict
from contextlib import suppress
from typing import Any

import aiokafka
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

CHECKED_AIOKAFKA = ((0, 11), (0, 15))
"""aiokafka releases whose fetcher internals were checked: from, up to (excluded)."""


class FetchedRecord(msgspec.Struct, frozen=True, gc=False):
    """One consumed message: where it was read from, its key and its value.

    The fields of a ``ConsumerRecord`` that the service uses (``engine.live.codec.Record``).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _fetched_record(tp: TopicPartition, record: Any) -> FetchedRecord:
    return FetchedRecord(tp.topic, tp.partition, record.offset, record.key, record.value)


class _FetchResults(OrderedDict[TopicPartition, Any]):
    """``Fetcher._records``, giving every stored fetch result the lean record builder."""

    def __setitem__(self, tp: TopicPartition, result: Any) -> None:
        records = getattr(result, "_partition_records", None)
        if records is not None:
            with suppress(AttributeError):  # no instance attributes: ConsumerRecords it is
                records._consumer_record = _fetched_record
        super().__setitem__(tp, result)


def use_fetched_records(consumer: AIOKafkaConsumer) -> bool:
    """Make a started consumer's ``getmany`` return ``FetchedRecord`` lists.

    Call after ``start()`` and before assigning or subscribing partitions. Only for consumers
    without key or value deserializers (a ``FetchedRecord`` holds the raw bytes).

    Parameters
    ----------
    consumer : AIOKafkaConsumer
        A started consumer with no partitions yet.

    Returns
    -------
    bool
        True when installed; False (logged) on an aiokafka version outside
        ``CHECKED_AIOKAFKA`` or with other internals: the consumer keeps handing out
        ``ConsumerRecord``.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    stored = getattr(fetcher, "_records", None)
    problem = None
    if not aiokafka_checked(aiokafka.__version__):
        problem = f"not checked with aiokafka {aiokafka.__version__}"
    elif fetcher is None or type(stored) is not OrderedDict:
        problem = "no Fetcher._records dict (is the consumer started?)"
    elif stored:
        problem = "the fetcher already holds records (install before assigning partitions)"
    elif not callable(getattr(_partition_records_class(), "_consumer_record", None)):
        problem = "PartitionRecords has no _consumer_record"
    elif getattr(fetcher, "_key_deserializer", None) or getattr(
        fetcher, "_value_deserializer", None
    ):
        problem = "the consumer has deserializers"
    if problem is not None:
        log.warning("fetched records stay aiokafka ConsumerRecords: %s", problem)
        return False
    assert fetcher is not None
    fetcher._records = _FetchResults()
    return True


def _partition_records_class() -> Any:
    try:
        return importlib.import_module("aiokafka.consumer.fetcher").PartitionRecords
    except (ImportError, AttributeError):
        return None


def aiokafka_checked(version: str) -> bool:
    """Whether ``use_fetched_records`` was checked with an aiokafka version (``CHECKED_AIOKAFKA``).

    Parameters
    ----------
    version : str
        An aiokafka version string, e.g. ``"0.14.0"``.

    Returns
    -------
    bool
        True within ``CHECKED_AIOKAFKA``; False outside it or when the version does not parse.
    """
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None:
        return False
    release = (int(found[1]), int(found[2]))
    return CHECKED_AIOKAFKA[0] <= release < CHECKED_AIOKAFKA[1]
