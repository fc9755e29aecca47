"""Service configuration: defaults, then a config file, then environment, then flags."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from engine.core.errors import TickIndexError
from engine.core.settings_file import read_settings_file
from engine.kernel.publication import parse_publication
from engine.live.security_settings import KafkaSecurity, safe_fields

ENV_PREFIX = "TICKINDEX_"

DEAD_LETTER_MAX_BYTES = 64 * 1024
"""Default bound of one dead-letter record (key, value and headers)."""
MIN_DEAD_LETTER_BYTES = 4096
"""Smallest bound allowed: room for the headers, the key and the start of the value."""


class ConfigError(TickIndexError):
    """The configuration is invalid (unknown key, wrong type, bad value)."""


class ServiceConfig(KafkaSecurity, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every setting of ``tickindex serve``.

    Attributes
    ----------
    bootstrap : str
        Kafka bootstrap servers, ``host:port[,host:port]``.
    tick_topic, level_topic, dead_letter_topic, state_topic : str
        Input ticks; published levels (keyed by index code); rejected ticks with the reason;
        compacted engine checkpoints.
    control_topic, audit_topic : str
        Maintenance events in (corporate actions, reviews); divisor changes out.
    ohlc_topic : str
        Daily open/high/low/close bars per index, published at each day's roll.
    fx_topic : str
        FX ticks (``fx_tick``/``fx_tick_batch``) for currency variants; read only with
        ``variants``.
    variants : str or None
        Currency variants CSV (``index,base_index,currency,fx_pair,prev_close_level,
        fx_prev_close``, as ``tickindex replay --variants``): each variant is published on the
        level topic next to its base index. None: no variants, the FX topic is not read.
    sessions : bool
        HKEX trading sessions: ticks outside them are rejected, bars kept, days rolled.
    calendar : str or None
        Holidays and half days (CSV ``date,kind``); implies ``sessions``.
    eod_dir : str or None
        Folder for each next trading day's opening files; implies ``sessions``.
    group_id : str
        Consumer group whose offsets are committed.
    shard : str
        Names this instance's transactional id and checkpoint key; one universe, one shard.
    delivery : {"at-least-once", "exactly-once"}
        Commit protocol (see ``engine.live.service``).
    wire_format : {"json", "msgpack"}
        Encoding of tick and level messages.
    level_messages : {"batch", "single"}
        One ``index_levels`` message per index per batch, or one ``index_level`` per level.
    max_batch_ticks : int
        Most ticks per engine batch: a fetch holding more (``tick_batch`` messages) is applied
        in several engine calls of at most this many ticks (levels are the same however the
        stream is cut), and fetches are sized from the ticks per message seen so far
        (``getmany`` max_records = this / that average, at least 1).
    dead_letter_max_bytes : int
        Bound of one dead-letter record, key, value and headers together (at least 4096); a
        longer original value is cut, its size and SHA-256 are in the headers.
    poll_timeout_ms : int
        How long ``getmany`` waits for the first message.
    max_in_flight_batches : int
        At-least-once: batches whose levels may await acknowledgement before fetching pauses;
        batches of few levels count less (``engine.live.kafka.output.InFlightBatches``).
    checkpoint_interval_ms : int
        At-least-once: time between checkpoints (exactly-once checkpoints every transaction).
    start_from : {"earliest", "latest"}
        Where to start reading when there is no checkpoint.
    tick_partitions : int
        Partitions of the tick topic when the service creates it.
    metrics_host, metrics_port : str, int
        Prometheus endpoint; port 0 picks a free port, -1 disables it.
    indices, composition : str or None
        Reference data files; None for the built-in Hang Seng family.
    linger_ms : int
        Producer linger. 0 (default) batches by load alone: aiokafka keeps one produce request
        in flight per connection and the records queued meanwhile go together in the next, so
        a quiet feed's levels go at once and a heavy feed's in requests as large as the round
        trip allows; a linger only delays a quiet feed's levels.
    output_process : bool
        Encode and produce levels in a child process (``engine.live.kafka.output_process``), so they
        use a second core; False: in the service's own event loop.
    adaptive_output : bool
        With ``output_process``, at-least-once: batches of at most ``SMALL_BATCH_LEVELS`` levels
        are produced on the service's loop while the child has nothing in flight, saving a quiet
        feed the hop to the child (``engine.live.kafka.output_switch``).
    level_producers : int
        At-least-once: producer connections publishing levels (indices spread over them by id;
        each index keeps its order). A small batch sent when every earlier one is acknowledged
        goes through the first alone (one produce request, see ``SMALL_BATCH_LEVELS`` in
        ``engine.live.kafka.output``). Exactly-once uses one transactional producer.
    fetched_records : bool
        The tick consumer hands out lean ``FetchedRecord`` structs instead of aiokafka
        ``ConsumerRecord``s (``engine.live.kafka.fetch``); False: aiokafka's own records.
    max_pending_events : int
        Most maintenance events waiting for their effective time; beyond it a new one is
        dead-lettered (``invalid_event``). They are stored in every checkpoint.
    max_pending_event_bytes : int
        Most encoded bytes of waiting events, likewise.
    event_late_tolerance_ms : int
        How far before the stream's last tick time an event's effective time may be (it then
        applies before the next tick); earlier ones are dead-lettered.
    event_horizon_days : int
        How far after the wall clock an event's effective time may be.
    publication : str
        Which levels go to the level topic, per index group: comma-separated
        ``PATTERN=POLICY``, ``PATTERN`` a glob over index codes, ``POLICY`` ``all`` or ``<N>ms``
        (at most one level per index per N ms of event time, the last, with the count it stands
        for); first match wins, unmatched indices get every level (``engine.kernel.publication``).
    complete_level_topic : str or None
        Where every level also goes, unconflated (``tickindex record --complete`` reads it);
        None: nowhere.
    security_protocol, sasl_mechanism, sasl_username, sasl_password, sasl_password_file : str
        How every Kafka client of the service connects and logs in: see
        ``engine.live.kafka.security.KafkaSecurity``.
    ssl_cafile, ssl_certfile, ssl_keyfile, ssl_key_password, ssl_key_password_file : str
        TLS files (and key password) of every Kafka client.
    ssl_check_hostname : bool
        Check the broker certificate's host name. Passwords come from the environment, the
        config file or the ``*_file`` settings, never from flags, and are hidden in the repr.
    shards : int
        Index shards (``engine.live.shard_group``): 1 (default) runs the whole family here;
        N > 1 joins the group of instances sharing N shards, each shard computing its indices
        with its own checkpoint and transactional id (``shard`` becomes ``k-of-N``). Not with
        ``variants`` yet: a shard knowing only its variants' FX pairs would dead-letter the
        others' FX ticks as unknown pairs.
    shard_topic : str
        Assignment topic with one partition per shard, balanced by the group
        ``<group_id>-shards``; created with ``shards`` partitions, refused with another count.
    shard_session_timeout_ms : int
        Session timeout of the shard group: how long a silent instance keeps its shards before
        the group hands them to a survivor.
    analytics : bool
        Per-index and pair analytics and signals (``engine.analytics``) on ``analytics_topic``,
        keyed by index, pair or signal name, in the wire format; implies ``sessions``. In the
        checkpoints, and exactly-once in each transaction (``engine.live.analytics``).
    analytics_topic : str
        Where the analytics records go (with ``analytics``).
    analytics_config : str or None
        With ``analytics``: its settings file (TOML or JSON, ``engine.analytics.config``); None:
        the defaults.
    analytics_idle_ms : int
        A live feed (event time near the wall clock) quiet this long lets the analytics
        boundaries up to the wall clock minus this pass without a tick, so a session close goes
        out at once; 0: only ticks pass boundaries.
    """

    bootstrap: str = "127.0.0.1:9092"
    tick_topic: str = "ticks"
    level_topic: str = "index-levels"
    dead_letter_topic: str = "ticks-dead-letter"
    state_topic: str = "tickindex-state"
    control_topic: str = "tickindex-control"
    audit_topic: str = "tickindex-divisor-audit"
    ohlc_topic: str = "tickindex-ohlc"
    fx_topic: str = "fx-ticks"
    variants: str | None = None
    sessions: bool = False
    calendar: str | None = None
    eod_dir: str | None = None
    group_id: str = "tickindex"
    shard: str = "0"
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    wire_format: Literal["json", "msgpack"] = "json"
    level_messages: Literal["batch", "single"] = "batch"
    max_batch_ticks: int = 20_000
    dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES
    poll_timeout_ms: int = 2
    max_in_flight_batches: int = 8
    checkpoint_interval_ms: int = 1000
    start_from: Literal["earliest", "latest"] = "earliest"
    tick_partitions: int = 1
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    indices: str | None = None
    composition: str | None = None
    linger_ms: int = 0
    output_process: bool = True
    adaptive_output: bool = True
    level_producers: int = 2
    fetched_records: bool = True
    max_pending_events: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    max_pending_event_bytes: Annotated[int, msgspec.Meta(gt=0)] = 4 << 20
    event_late_tolerance_ms: Annotated[int, msgspec.Meta(ge=0)] = 60_000
    event_horizon_days: Annotated[int, msgspec.Meta(gt=0, le=100 * 366)] = 400
    publication: str = "all"
    complete_level_topic: str | None = None
    shards: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    shard_topic: str = "tickindex-shards"
    shard_session_timeout_ms: Annotated[int, msgspec.Meta(ge=1000, le=3_600_000)] = 10_000
    analytics: bool = False
    analytics_topic: str = "index-analytics"
    analytics_config: str | None = None
    analytics_idle_ms: Annotated[int, msgspec.Meta(ge=0, le=3_600_000)] = 2000

    def __repr__(self) -> str:
        return f"ServiceConfig({', '.join(f'{k}={v!r}' for k, v in safe_fields(self))})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return list(safe_fields(self))

    def __post_init__(self) -> None:
        positive = (
            "max_batch_ticks",
            "max_in_flight_batches",
            "tick_partitions",
            "poll_timeout_ms",
            "level_producers",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES:
            raise ValueError(f"dead_letter_max_bytes must be at least {MIN_DEAD_LETTER_BYTES}")
        if (self.indices is None) != (self.composition is None):
            raise ValueError("give both indices and composition, or neither")
        if self.variants is not None and self.fx_topic in (self.tick_topic, self.control_topic):
            raise ValueError("fx_topic must differ from tick_topic and control_topic")
        parse_publication(self.publication)
        if self.complete_level_topic in (self.level_topic, self.tick_topic):
            raise ValueError("complete_level_topic must differ from level_topic and tick_topic")
        if self.shards > 1 and self.variants is not None:
            raise ValueError("currency variants are not supported with shards > 1 yet")
        if self.analytics and self.shards > 1:
            raise ValueError("analytics are not supported with shards > 1 yet")
        inputs = (self.tick_topic, self.control_topic, self.level_topic, self.state_topic)
        if self.analytics and self.analytics_topic in inputs:
            raise ValueError(
                "analytics_topic must differ from the tick, control, level, state topics"
            )

    @property
    def uses_sessions(self) -> bool:
        """Trading sessions: asked for, or implied by a calendar, EOD files or analytics."""
        return self.sessions or bool(self.calendar or self.eod_dir) or self.analytics

    @property
    def transactional_id(self) -> str:
        """One transactional id per shard: a restarted shard fences its previous incarnation."""
        return f"tickindex-{self.group_id}-{self.shard}"

    @property
    def checkpoint_key(self) -> bytes:
        """Key of this shard's checkpoints on the compacted state topic."""
        return f"{self.group_id}/{self.shard}".encode()


def topic_settings() -> tuple[str, ...]:
    """The settings naming a topic every service uses: not optional ones that are unset by
    default (``complete_level_topic``), which turn a feature on when given a name."""
    defaults = ServiceConfig()
    return tuple(
        name
        for name in ServiceConfig.__struct_fields__
        if name.endswith("_topic") and getattr(defaults, name) is not None
    )


def _read_file(path: Path) -> dict[str, Any]:
    return read_settings_file(path, ConfigError, "config file")


def load_config(
    file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServiceConfig:
    """Merge settings: defaults < config file (TOML or JSON) < ``TICKINDEX_*`` env < overrides.

    Raises
    ------
    ConfigError
        Naming the offending setting and where it came from.
    """
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if file is not None:
        for key, value in _read_file(Path(file)).items():
            merged[key], sources[key] = value, str(file)
    fields = set(ServiceConfig.__struct_fields__)
    for name, value in (env or {}).items():
        key = name.removeprefix(ENV_PREFIX).lower()
        if name.startswith(ENV_PREFIX) and key in fields:
            merged[key], sources[key] = value, f"${name}"
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key], sources[key] = value, f"--{key.replace('_', '-')}"
    try:
        return msgspec.convert(merged, ServiceConfig, strict=False)
    except msgspec.ValidationError as exc:
        where = ", ".join(f"{k} from {v}" for k, v in sources.items() if k in str(exc))
        raise ConfigError(
            f"invalid configuration: {exc}" + (f" ({where})" if where else "")
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
