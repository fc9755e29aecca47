"""Live-service review fixes: control dead letters keep the configured bound; a broker outage
does not count toward the limit of refused transactions; ``record`` refuses index codes and
times a level file cannot hold; exactly-once counts a batch only when it commits.
"""

from __future__ import annotations

from typing import Literal

import pytest
from prometheus_client import CollectorRegistry

from consumers.level_checks import MAX_TS_EVENT, level_message_problem
from engine.core.errors import DeliveryError
from engine.live.codec import OutgoingMessage, Record
from engine.live.config import ServiceConfig
from engine.live.dead_letters import record_size
from engine.live.fetch_work import FetchWork
from engine.live.kafka.records import record_identity
from engine.live.kafka.recovery import AbortPolicy
from engine.live.metrics import ServiceMetrics
from engine.refdata.builtin import load_builtin_universe
from engine.wire import IndexLevel, IndexLevels, WireCodec
from tests.support.live import InProcessService, simulate
from tests.support.poison import singles
from tests.support.records import FakeRecord


def test_control_dead_letters_keep_the_configured_bound() -> None:
    universe = load_builtin_universe()
    config = ServiceConfig(dead_letter_max_bytes=4096)
    work = FetchWork(
        config, universe, ServiceMetrics(CollectorRegistry(), universe.index_codes, version="t")
    )
    bad = FakeRecord(config.control_topic, 0, 3, b"k", b"\xc1" + b"x" * 100_000)

    _, messages = work.process({config.control_topic: [bad]})

    (letter,) = [m for m in messages if m.topic == config.dead_letter_topic]
    assert dict(letter.headers)["tickindex.reason"] == b"invalid_event"
    assert record_size(letter) <= 4096
    assert dict(letter.headers)["tickindex.truncated"] == b"true"


DEAD_LETTER = OutgoingMessage("dlq", b"k", b"v" * 10)


def _refused(message: OutgoingMessage) -> DeliveryError:
    return DeliveryError("refused", retriable=False, refused=frozenset({record_identity(message)}))


def test_a_broker_outage_does_not_make_a_refused_dead_letter_fatal() -> None:
    policy = AbortPolicy(attempts=5)
    for _ in range(4):
        policy.retry_delay(DeliveryError("broker gone", retriable=True))
    policy.retry_delay(_refused(DEAD_LETTER))  # refused in a shared record batch: sent alone
    policy.retry_delay(_refused(DEAD_LETTER))  # refused alone: dropped from the retried batch
    kept, dropped = policy.without_refused([DEAD_LETTER])
    assert (kept, dropped) == ([], [DEAD_LETTER])


def test_dropping_a_refused_record_restarts_the_count() -> None:
    policy = AbortPolicy(attempts=3)
    others = [OutgoingMessage("dlq", b"k", bytes([n]) * 10) for n in range(4)]
    for message in others:  # each batch refuses one more dead letter, then drops it
        policy.without_refused(others)
        policy.retry_delay(_refused(message))
        policy.without_refused(others)
        policy.retry_delay(_refused(message))
    assert len(policy.without_refused(others)[1]) == len(others)


def test_refusals_in_a_row_still_stop_the_service() -> None:
    policy = AbortPolicy(attempts=3)
    level = OutgoingMessage("levels", b"HSI", b"x")
    policy.retry_delay(DeliveryError("broker gone", retriable=True))
    policy.retry_delay(_refused(level))
    policy.retry_delay(_refused(level))
    with pytest.raises(DeliveryError, match="3 transactions in a row"):
        policy.retry_delay(_refused(level))


TS = 1_795_138_200_000_000_000


@pytest.mark.parametrize("code", ["A,B", 'A"B', "A\nB", "A\rB", "HSI\x00", "恒指", "A\x7f"])
def test_record_refuses_index_codes_that_break_a_csv_row(code: str) -> None:
    problem = level_message_problem(IndexLevel(code, 1.0, 0.0, TS, TS, 1))
    assert problem is not None and "printable ASCII" in problem


@pytest.mark.parametrize("ts_event", [2**63 - 1, MAX_TS_EVENT + 1, -1])
def test_record_refuses_times_whose_day_would_wrap(ts_event: int) -> None:
    single = IndexLevel("HSI", 1.0, 0.0, ts_event, TS, 1)
    batch = IndexLevels("HSI", 1.0, [1.0, 2.0], [TS, ts_event], [1, 2], TS)
    assert level_message_problem(single) == "ts_event before 1970 or after 2261"
    assert level_message_problem(batch) == "ts_event before 1970 or after 2261"


def test_record_keeps_usual_codes_and_times() -> None:
    assert level_message_problem(IndexLevel("HSCEI Tech-1", 1.0, 0.0, TS, TS, 1)) is None
    assert level_message_problem(IndexLevels("HSI", 1.0, [1.0], [MAX_TS_EVENT], [1], TS)) is None
    assert level_message_problem(IndexLevels("HSI", 1.0, [], [], [], TS)) is None


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_a_batch_processed_again_after_an_abort_is_counted_once(
    delivery: Literal["at-least-once", "exactly-once"],
) -> None:
    universe = load_builtin_universe()
    config = ServiceConfig(delivery=delivery)
    live = InProcessService(config, universe)
    service = live.service
    messages = singles(universe, simulate(universe, 50, seed=5), WireCodec(config.wire_format))
    records: list[Record] = [
        FakeRecord(config.tick_topic, 0, offset, key, value)
        for offset, (key, value) in enumerate([*messages, (None, b"\xc1 bad")])
    ]
    committed = service.checkpoints.decode(service._checkpoint_message().value)

    service.work.process({config.tick_topic: records})
    if delivery == "at-least-once":  # no transaction: counted at once
        assert live.sample("tickindex_ticks_consumed_total") == 51
        return
    assert live.sample("tickindex_ticks_consumed_total") == 0, "held until the commit"
    service._rebuild_engine(committed)  # the transaction aborted: recovery
    service.work.process({config.tick_topic: records})
    service.work.counts.release()  # committed

    assert live.sample("tickindex_ticks_consumed_total") == 51
    assert live.sample("tickindex_ticks_applied_total") == 50
    assert live.sample("tickindex_dead_letters_total", reason="undecodable") == 1
