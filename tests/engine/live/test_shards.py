"""Index shards without a broker: the plan, what a shard does with events and dead letters,
its settings and its metrics."""

from __future__ import annotations

import asyncio
import zlib
from typing import ClassVar

import msgspec
import pytest
from aiokafka.errors import ProducerFenced
from prometheus_client import CollectorRegistry, generate_latest

from engine.core.errors import DeliveryError
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.live import shard_group
from engine.live.codec import OutgoingMessage
from engine.live.config import ConfigError, ServiceConfig, load_config
from engine.live.control import ControlChannel
from engine.live.dead_letters import is_shared_input_letter
from engine.live.kafka.fetch import FetchedRecord
from engine.live.kafka.output_framing import OutputProcessError
from engine.live.shard_group import ShardGroup, shard_config
from engine.live.shard_metrics import ShardMetrics
from engine.live.shard_service import ShardFencedError, is_fenced
from engine.live.shards import ShardPlan, shard_name, shard_of_code
from engine.maintenance.events import (
    AddConstituent,
    FafChange,
    IndexEvent,
    Review,
    ReviewRow,
    StockSplit,
)
from engine.pipeline.chain import IndexPipeline
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.subset import restrict_universe
from engine.testing import TestingSink
from producers.simulator import MarketSimulator

T = 1_795_138_200_000_000_000
DLQ = "dlq"
UNIVERSE = load_builtin_universe()
PLAN = ShardPlan.for_universe(UNIVERSE, 3)


def code_in(shard: int) -> str:
    return next(
        code
        for code in PLAN.codes_of(shard)
        if UNIVERSE.indices[UNIVERSE.index_id(code)].underlying is None
    )


# -- the plan ------------------------------------------------------------------------------------


def test_every_index_is_in_exactly_one_shard() -> None:
    shards = [set(PLAN.codes_of(k)) for k in range(3)]
    assert set().union(*shards) == set(UNIVERSE.index_codes)
    assert sum(len(s) for s in shards) == len(UNIVERSE.index_codes)


def test_the_shard_is_a_stable_function_of_the_code() -> None:
    assert shard_of_code("HSI", 3) == zlib.crc32(b"HSI") % 3  # the same in every process
    smaller = restrict_universe(UNIVERSE, [c for c in UNIVERSE.index_codes if c != "HSTECH"])
    plan = ShardPlan.for_universe(smaller, 3)
    assert all(plan.shard_of[code] == PLAN.shard_of[code] for code in smaller.index_codes)


def test_total_return_indices_and_variants_go_with_their_base() -> None:
    plan = ShardPlan.for_universe(UNIVERSE, 7, variants={"HSI_USD": "HSI", "GTR_USD": "HSI_GTR"})
    assert plan.shard_of["HSI_GTR"] == plan.shard_of["HSI"] == shard_of_code("HSI", 7)
    assert plan.shard_of["HSCEI_NTR"] == plan.shard_of["HSCEI"]
    assert plan.shard_of["HSI_USD"] == plan.shard_of["GTR_USD"] == plan.shard_of["HSI"]


def test_a_shard_universe_has_every_security_and_its_indices_only() -> None:
    for k in range(3):
        universe = PLAN.universe_of(UNIVERSE, k)
        assert universe.index_codes == PLAN.codes_of(k)
        assert universe.securities == UNIVERSE.securities


def test_one_shard_takes_everything_and_zero_shards_are_refused() -> None:
    assert ShardPlan.for_universe(UNIVERSE, 1).codes_of(0) == UNIVERSE.index_codes
    with pytest.raises(ValueError, match="positive"):
        ShardPlan.for_universe(UNIVERSE, 0)


# -- control events ------------------------------------------------------------------------------


class _Discard:
    def write(self, levels: LevelColumns) -> None:
        del levels


def channel(shard: int) -> ControlChannel:
    universe = PLAN.universe_of(UNIVERSE, shard)
    pipeline = IndexPipeline(IndexCalculator(universe), _Discard())
    control = ControlChannel(pipeline, "json", wall_clock=lambda: T)
    control.scope = PLAN.scope(shard)
    return control


def records(*events: IndexEvent | bytes) -> list[FetchedRecord]:
    return [
        FetchedRecord("control", 0, n, None, e if isinstance(e, bytes) else msgspec.json.encode(e))
        for n, e in enumerate(events)
    ]


def add(index: str, security: str = "9999") -> AddConstituent:
    return AddConstituent(
        effective=T, index=index, security=security, issued_shares=1e9, faf=0.5, price=10.0
    )


def test_an_event_for_another_shard_s_index_is_ignored_but_its_security_registered() -> None:
    own, other = channel(0), channel(1)
    event = add(code_in(0))
    assert own.receive(records(event), DLQ) == [] and len(own.pipeline.events) == 1
    assert other.receive(records(event), DLQ) == [] and len(other.pipeline.events) == 0
    assert other.pipeline.calculator.universe.security_id("9999") >= 0  # its ticks apply there


def test_a_refused_event_is_dead_lettered_once_over_the_shards() -> None:
    unknown_index = add("NOPE")
    unknown_security = FafChange(effective=T, security="NOSUCH", faf=0.5, index=code_in(2))
    bad = b"{not json"
    written = [
        len(channel(k).receive(records(unknown_index, unknown_security, bad), DLQ))
        for k in range(3)
    ]
    assert written == [2, 0, 1]  # no shard's index and undecodable: shard 0; its own: shard 2


def test_a_security_wide_event_applies_in_every_shard() -> None:
    split = StockSplit(effective=T, security=UNIVERSE.securities[0], ratio=2.0)
    for k in range(3):
        control = channel(k)
        assert control.receive(records(split), DLQ) == []
        assert len(control.pipeline.events) == 1


def test_a_review_keeps_the_rows_of_the_shard_s_indices() -> None:
    rows = [
        ReviewRow(index=code_in(k), security=UNIVERSE.securities[k], issued_shares=1e9, faf=1.0)
        for k in range(3)
    ]
    review = Review(effective=T, rows=rows)
    scope = PLAN.scope(1)
    restricted = scope.restrict(review)
    assert isinstance(restricted, Review) and restricted.rows == [rows[1]]
    only_other = Review(effective=T, rows=[rows[0]])
    assert scope.restrict(only_other) is None


# -- dead letters, settings, metrics -------------------------------------------------------------


def letter(reason: str, topic: str = DLQ) -> OutgoingMessage:
    return OutgoingMessage(topic, None, b"x", [("tickindex.reason", reason.encode())])


def test_shared_input_letters_are_the_tick_and_fx_ones() -> None:
    assert is_shared_input_letter(letter("undecodable"), DLQ)
    assert is_shared_input_letter(letter("unknown_security"), DLQ)
    assert is_shared_input_letter(letter("fx_unknown_pair"), DLQ)
    assert not is_shared_input_letter(letter("invalid_event"), DLQ)
    assert not is_shared_input_letter(letter("nonfinite_level"), DLQ)
    assert not is_shared_input_letter(letter("undecodable", topic="levels"), DLQ)


def test_a_shard_has_its_own_name_checkpoint_key_and_end_of_day_folder() -> None:
    config = ServiceConfig(shards=3, group_id="g", eod_dir="/tmp/eod")
    one = shard_config(config, 1)
    assert one.shard == shard_name(1, 3) == "1-of-3"
    assert one.checkpoint_key == b"g/1-of-3"
    assert one.transactional_id != shard_config(config, 2).transactional_id
    assert one.eod_dir == "/tmp/eod/shard-1-of-3"


def test_shard_settings_are_checked() -> None:
    assert ServiceConfig().shards == 1
    assert load_config(env={"TICKINDEX_SHARDS": "4"}).shards == 4
    with pytest.raises(ConfigError):
        load_config(overrides={"shards": 0})
    with pytest.raises(ConfigError):
        load_config(overrides={"shard_session_timeout_ms": 10})
    with pytest.raises(ConfigError, match="variants are not supported with shards"):
        load_config(overrides={"shards": 2, "variants": "variants.csv"})


def test_a_shard_without_indices_still_applies_ticks() -> None:
    plan = ShardPlan.for_universe(UNIVERSE, 40)  # more shards than indices
    empty = next(k for k in range(40) if not plan.codes_of(k))
    universe = plan.universe_of(UNIVERSE, empty)
    sink = TestingSink(universe.index_codes)
    pipeline = IndexPipeline(IndexCalculator(universe), sink)
    pipeline.process(MarketSimulator(UNIVERSE, 7, start_ns=T).next_batch(500))
    assert pipeline.stats.ticks_applied == 500
    assert len(sink.levels) == 0


def test_shard_metrics_are_labelled_per_shard_with_ownership() -> None:
    registry = CollectorRegistry()
    metrics = ShardMetrics(registry, 3, version="test")
    zero = metrics.of_shard(0, PLAN.codes_of(0))
    assert metrics.of_shard(0, PLAN.codes_of(0)) is zero
    two = metrics.of_shard(2, PLAN.codes_of(2))
    metrics.set_owned(0, True)
    metrics.set_owned(2, True)
    zero.record_batch(consumed=5, applied=5, rejected={}, processing_seconds=0.001)
    two.record_batch(consumed=7, applied=6, rejected={"undecodable": 1}, processing_seconds=0.0)
    zero.set_consumer_lag({("ticks", 0): 12})
    text = generate_latest(registry).decode()
    assert 'tickindex_shard_owned{shard="0"} 1.0' in text
    assert 'tickindex_shard_owned{shard="1"} 0.0' in text
    assert 'tickindex_ticks_consumed_total{shard="0"} 5.0' in text
    assert 'tickindex_ticks_consumed_total{shard="2"} 7.0' in text
    assert 'tickindex_consumer_lag_messages{partition="0",shard="0",topic="ticks"} 12.0' in text
    metrics.set_owned(0, False)
    text = generate_latest(registry).decode()
    assert 'tickindex_shard_owned{shard="0"} 0.0' in text
    assert 'tickindex_consumer_lag_messages{partition="0",shard="0"' not in text


def test_a_shard_given_back_shows_its_counters_but_no_gauges() -> None:
    registry = CollectorRegistry()
    metrics = ShardMetrics(registry, 2, version="test")
    zero = metrics.of_shard(0, PLAN.codes_of(0))
    metrics.set_owned(0, True)
    zero.record_batch(consumed=5, applied=5, rejected={}, processing_seconds=0.001)
    zero.checkpoint_written(1.0)
    zero.set_up("running")
    owned = generate_latest(registry).decode()
    assert 'tickindex_checkpoint_age_seconds{shard="0"}' in owned
    assert 'tickindex_service_phase{phase="running",shard="0"} 1.0' in owned
    metrics.set_owned(0, False)
    released = generate_latest(registry).decode()
    assert 'tickindex_ticks_consumed_total{shard="0"} 5.0' in released
    assert 'tickindex_checkpoint_age_seconds{shard="0"}' not in released
    assert 'tickindex_service_phase{phase="running",shard="0"}' not in released
    metrics.set_owned(0, True)
    assert 'tickindex_checkpoint_age_seconds{shard="0"}' in generate_latest(registry).decode()


# -- fencing -------------------------------------------------------------------------------------


def test_fencing_is_recognised_through_causes_and_output_process_text() -> None:
    try:
        try:
            raise ProducerFenced()
        except ProducerFenced as exc:
            raise DeliveryError("transaction not committed", retriable=True) from exc
    except DeliveryError as wrapped:
        assert is_fenced(wrapped)
    assert is_fenced(
        OutputProcessError("ProducerFenced: There is a newer producer", retriable=True)
    )
    assert not is_fenced(DeliveryError("level refused: MessageSizeTooLarge", retriable=False))


class FakeService:
    outcome: ClassVar[dict[int, BaseException | None]] = {}

    def __init__(self, config: ServiceConfig, *_: object) -> None:
        self.shard = int(config.shard.split("-")[0])
        self.stop = asyncio.Event()

    def request_stop(self) -> None:
        self.stop.set()

    async def run(self) -> None:
        failure = self.outcome.get(self.shard)
        if failure is not None:
            raise failure
        await self.stop.wait()


async def test_a_fenced_shard_is_given_up_alone_another_failure_stops_the_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shard_group, "ShardService", FakeService)
    FakeService.outcome = {1: ShardFencedError("shard 1-of-3 fenced")}
    metrics = ShardMetrics(CollectorRegistry(), 3, version="test")
    group = ShardGroup(ServiceConfig(shards=3), UNIVERSE, metrics)
    group.acquire([0, 1])
    await asyncio.sleep(0.01)
    group._raise_failure()  # the fenced one is forgotten, not raised
    assert group.owned() == [0]
    FakeService.outcome = {2: DeliveryError("level refused", retriable=False)}
    group.acquire([2])
    await asyncio.sleep(0.01)
    with pytest.raises(DeliveryError, match="level refused"):
        group._raise_failure()
    await group.release(group.owned())
    assert group.owned() == []
