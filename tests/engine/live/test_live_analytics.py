"""``FetchWork`` with analytics: records as analytics-topic messages, checkpoints, a quiet feed.

The records of the fetches are those of ``tickindex replay --analytics`` on the same ticks, with a
fresh ``FetchWork`` restored from a checkpoint mid-stream as well; a quiet feed passes its
boundaries on the (fake) wall clock, so the session close goes out without another tick.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from engine.analytics.records import IndexAnalytics, PairAnalytics, SignalEvent, kafka_key
from engine.analytics.schedule import AnalyticsSchedule
from engine.live.codec import OutgoingMessage, Record
from engine.live.config import ConfigError, ServiceConfig, load_config
from engine.live.fetch_work import FetchWork
from engine.live.metrics import ANALYTICS_KINDS, ServiceMetrics
from engine.pipeline.state import EngineState
from engine.refdata.universe import Universe
from engine.wire import WireCodec
from tests.support.analytics_stream import CALENDAR, FRIDAY, hkt
from tests.support.live_analytics import (
    CLOSE_NS,
    FakeClock,
    afternoon,
    replay_analytics,
    tick_messages,
    write_settings,
)
from tests.support.records import FakeRecord
from tests.support.seed import SEED

GRACE_NS = 2_000_000_000


def _config(settings: Path, **options: object) -> ServiceConfig:
    return load_config(
        overrides={"analytics": True, "analytics_config": str(settings), "max_batch_ticks": 500}
        | options
    )


def _fetches(
    universe: Universe, config: ServiceConfig, parts: int
) -> list[dict[str, list[Record]]]:
    _, ticks = afternoon(SEED)
    messages = tick_messages(universe, ticks, WireCodec(config.wire_format))
    records: list[Record] = [
        FakeRecord(config.tick_topic, 0, offset, None, value)
        for offset, value in enumerate(messages)
    ]
    size = -(-len(records) // parts)
    return [{config.tick_topic: records[at : at + size]} for at in range(0, len(records), size)]


def _packed(state: object) -> bytes:
    """A state as its checkpoint bytes (NaN compares equal to itself there)."""
    return msgspec.msgpack.encode(state)


class Live:
    """A ``FetchWork`` with analytics on a fake clock, keeping its analytics messages."""

    def __init__(self, universe: Universe, config: ServiceConfig, clock: FakeClock) -> None:
        self.registry = CollectorRegistry()
        metrics = ServiceMetrics(self.registry, universe.index_codes, version="test")
        self.work = FetchWork(config, universe, metrics, clock=clock)
        self.config = config
        self.clock = clock
        self.messages: list[OutgoingMessage] = []

    def process(self, fetch: dict[str, list[Record]], *, live: bool = True) -> None:
        """One fetch; ``live``: it comes when the wall clock is its last tick's event time."""
        records = fetch.get(self.config.tick_topic, [])
        if live and records:
            self.clock.now = max(msgspec.json.decode(r.value or b"")["ts_event"] for r in records)
        _, messages = self.work.process(fetch)
        self.messages += [m for m in messages if m.topic == self.config.analytics_topic]

    def records(self) -> list[object]:
        codec = WireCodec(self.config.wire_format)
        return [codec.decode_analytics(m.value) for m in self.messages]

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        assert value is not None, name
        return value


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[object]:
    universe, ticks = afternoon(SEED)
    folder = tmp_path_factory.mktemp("replay")
    return list(replay_analytics(universe, ticks, write_settings(folder), folder))


def test_fetch_records_are_replays_and_the_close_goes_out_on_the_wall_clock(
    tmp_path: Path, reference: list[object]
) -> None:
    universe, ticks = afternoon(SEED)
    config = _config(write_settings(tmp_path))
    clock = FakeClock(int(ticks.ts_event[0]))
    live = Live(universe, config, clock)
    for fetch in _fetches(universe, config, 7):
        live.process(fetch)
        clock.now += GRACE_NS - 1  # the next ticks come within the grace: no idle advance
        assert not live.work.idle_release_due()
    assert not any(isinstance(r, IndexAnalytics) and r.final for r in live.records())

    clock.now = CLOSE_NS + GRACE_NS - 1
    assert not live.work.idle_release_due(), "the close is not past the wall clock's grace yet"
    clock.now = CLOSE_NS + GRACE_NS
    assert live.work.idle_release_due()
    live.process({})
    assert not live.work.idle_release_due(), "nothing left to pass before tomorrow"

    records = live.records()
    assert records == reference
    assert {type(r) for r in records} == {IndexAnalytics, PairAnalytics, SignalEvent}
    assert any(isinstance(r, IndexAnalytics) and r.final for r in records)
    assert [m.key for m in live.messages] == [kafka_key(r) for r in reference]  # type: ignore[arg-type]
    for kind in ANALYTICS_KINDS:
        count = sum(1 for m in live.messages if f'"type":"{kind}"'.encode() in m.value)
        assert live.sample("tickindex_analytics_records_total", kind=kind) == count > 0, kind
    betas = [r for r in records if isinstance(r, PairAnalytics) and r.beta is not None]
    assert betas, "the stream should give the pairs a beta"
    last = {r.pair: r.beta for r in betas}
    for pair, beta in last.items():
        assert live.sample("tickindex_pair_beta", pair=pair) == beta


def test_a_fresh_work_restored_mid_stream_publishes_the_same_records(
    tmp_path: Path, reference: list[object]
) -> None:
    universe, ticks = afternoon(SEED)
    config = _config(write_settings(tmp_path))
    clock = FakeClock(int(ticks.ts_event[0]))
    fetches = _fetches(universe, config, 6)
    first = Live(universe, config, clock)
    for fetch in fetches[:3]:
        first.process(fetch)
    state = first.work.capture({}, 1)
    assert state.analytics is not None
    # Through the checkpoint's encoding (MessagePack) into a fresh work, as a restart does.
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=EngineState)
    second = Live(universe, config, clock)
    second.work.restore(decoded)
    assert _packed(second.work.capture({}, 1)) == _packed(state)
    for fetch in fetches[3:]:
        second.process(fetch)
    clock.now = CLOSE_NS + GRACE_NS
    second.process({})
    assert first.records() + second.records() == reference


def test_a_checkpoint_without_fitting_analytics_state_starts_them_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    universe, ticks = afternoon(SEED)
    config = _config(write_settings(tmp_path))
    clock = FakeClock(int(ticks.ts_event[0]))
    running = Live(universe, config, clock)
    running.process(_fetches(universe, config, 4)[0])
    state = running.work.capture({}, 1)
    fresh = _packed(Live(universe, config, clock).work.capture({}, 1).analytics)
    assert _packed(state.analytics) != fresh

    old = msgspec.structs.replace(state, analytics=None, version=6)  # before analytics existed
    decoded = msgspec.msgpack.decode(
        msgspec.msgpack.encode(
            {k: v for k, v in msgspec.to_builtins(old).items() if k != "analytics"}
        ),
        type=EngineState,
    )
    assert decoded.analytics is None
    with caplog.at_level(logging.WARNING):
        restored = Live(universe, config, clock)
        restored.work.restore(decoded)
    assert "no analytics state" in caplog.text
    assert _packed(restored.work.capture({}, 1).analytics) == fresh
    assert restored.work.capture({}, 1).prices == state.prices, "the engine itself is restored"

    caplog.clear()
    other = _config(write_settings(tmp_path / "other"), analytics_config=None)  # window 120
    with caplog.at_level(logging.WARNING):
        misfit = Live(universe, other, clock)
        misfit.work.restore(state)
    assert "does not fit" in caplog.text
    assert _packed(misfit.work.capture({}, 1).analytics) == _packed(
        Live(universe, other, clock).work.capture({}, 1).analytics
    )


def test_a_quiet_feed_passes_interval_boundaries_after_the_grace_only(tmp_path: Path) -> None:
    universe, _ = afternoon(SEED)
    config = _config(write_settings(tmp_path))
    fetch = _fetches(universe, config, 20)[0]
    clock = FakeClock(0)
    live = Live(universe, config, clock)
    live.process(fetch)
    last_ts = clock.now
    before = len(live.messages)
    boundary = (last_ts // 10_000_000_000 + 1) * 10_000_000_000  # the next interval boundary
    clock.now = boundary + GRACE_NS - 1
    assert not live.work.idle_release_due()
    clock.now = boundary + GRACE_NS
    assert live.work.idle_release_due()
    live.process({})
    passed = live.records()[before:]
    assert passed and {r.ts_event for r in passed} == {boundary}  # type: ignore[attr-defined]
    assert not live.work.idle_release_due()

    quiet = Live(universe, _config(write_settings(tmp_path), analytics_idle_ms=0), clock)
    quiet.process(fetch)
    clock.now = CLOSE_NS + 60 * GRACE_NS
    assert not quiet.work.idle_release_due(), "analytics_idle_ms 0: only ticks pass boundaries"

    historical = Live(universe, config, clock)
    clock.now = last_ts + 61_000_000_000  # a replayed feed: event time a minute behind
    historical.process(fetch, live=False)
    clock.now += 3600 * GRACE_NS
    assert not historical.work.idle_release_due(), "a historical feed's ticks pass boundaries"


@pytest.mark.parametrize("hours", [9.0, 9.5 + 1e-9, 11.999, 12.0, 12.5, 16.05, 16.2, 23.0])
@pytest.mark.parametrize("day", [FRIDAY, FRIDAY + 1, FRIDAY + 4, FRIDAY + 5])
def test_the_next_boundary_is_the_first_the_schedule_would_pass(day: int, hours: float) -> None:
    # Friday, the weekend, the holiday Tuesday and the half day Wednesday of CALENDAR.
    after = hkt(day, hours)
    schedule = AnalyticsSchedule(CALENDAR, 10_000_000_000, 60_000_000_000, start_ns=after)
    boundary = schedule.boundary_after(after)
    assert boundary is not None and boundary > after
    probe = AnalyticsSchedule(CALENDAR, 10_000_000_000, 60_000_000_000, start_ns=after)
    assert probe.advance_to(boundary - 1) is None
    cut = probe.advance_to(boundary)
    assert cut is not None and int(cut.ts[-1]) == boundary


@pytest.mark.parametrize("wire_format", ["json", "msgpack"])
def test_a_record_the_codec_refuses_is_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, wire_format: str
) -> None:
    universe, ticks = afternoon(SEED)
    config = _config(write_settings(tmp_path), wire_format=wire_format)
    live = Live(universe, config, FakeClock(int(ticks.ts_event[0])))
    assert live.work.analytics is not None
    good = IndexAnalytics(
        index="HSI", ts_event=CLOSE_NS, level=1.0, prev_close=1.0, change=0.0,
        change_pct=0.0, adjusted_prev_close=1.0, high=2.0,
    )  # fmt: skip
    bad = [
        msgspec.structs.replace(good, level=math.nan),  # a required figure
        msgspec.structs.replace(good, high=math.inf),  # an optional one (JSON: null)
        msgspec.structs.replace(good, change=1e301),  # beyond MAX_FIGURE
    ]
    live.work.analytics.driver.sink.write_analytics([bad[0], good, *bad[1:]])
    with caplog.at_level(logging.ERROR):
        live.process({})
    assert live.records() == [good]
    assert live.sample("tickindex_analytics_records_refused_total") == len(bad)
    assert live.sample("tickindex_analytics_records_total", kind="index_analytics") == 1
    assert "level is nan" in caplog.text  # then rate-limited


def test_analytics_settings_imply_sessions_and_refuse_shards() -> None:
    assert ServiceConfig(analytics=True).uses_sessions
    assert not ServiceConfig().uses_sessions
    with pytest.raises(ConfigError, match="shards"):
        load_config(overrides={"analytics": True, "shards": 2})
    with pytest.raises(ConfigError, match="analytics_topic"):
        load_config(overrides={"analytics": True, "analytics_topic": "ticks"})
