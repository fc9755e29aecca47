"""Any Kafka client speaks the wire format: kcat reads the real service's level topic and
produces a JSON tick the service applies (and a malformed one it dead-letters)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import msgspec
import numpy as np
import pytest

from engine.live.config import topic_settings
from engine.refdata.builtin import load_builtin_universe
from engine.wire import IndexLevel, IndexLevels, LevelMessage, Tick, WireCodec
from producers.simulator import MarketSimulator
from tests.support.real_parts import require_tool
from tests.support.seed import SEED
from tickindex.cli.main import main

START_NS = 1_795_138_200_000_000_000
KCAT_TS = START_NS + 3_000_000_000
BAD_TICK = '{"type":"tick","security":"0700"}'


def kcat_consume(
    kcat: str, bootstrap: str, topic: str, fmt: str = "%s\\n", *, check: bool = True
) -> list[str]:
    """Every message of ``topic`` formatted by kcat, one per line (none when kcat fails and
    ``check`` is off, e.g. while the topic does not exist yet)."""
    result = subprocess.run(
        [kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )
    return result.stdout.splitlines() if result.returncode == 0 else []


def kcat_produce(kcat: str, bootstrap: str, topic: str, key: str, line: str) -> None:
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, "-k", key],
        input=line + "\n",
        text=True,
        timeout=60,
        check=True,
    )


def level_rows(lines: list[str]) -> list[tuple[str, int, float, int]]:
    """(index, ts_event, level, seq) of every level; every line must be a level message."""
    out: list[tuple[str, int, float, int]] = []
    for line in lines:
        assert json.loads(line)["type"] in {"index_level", "index_levels"}
        message = msgspec.json.decode(line, type=LevelMessage)
        if isinstance(message, IndexLevel):
            out.append((message.index, message.ts_event, message.level, message.seq))
        else:
            assert isinstance(message, IndexLevels)
            out.extend(
                (message.index, ts, level, seq)
                for ts, level, seq in zip(message.ts_event, message.level, message.seq, strict=True)
            )
    return out


@pytest.mark.kafka
@pytest.mark.parametrize("level_messages", ["batch", "single"])
def test_kcat_reads_levels_and_produces_ticks(
    kafka_bootstrap: str, tmp_path: Path, level_messages: str
) -> None:
    kcat = require_tool("kcat")
    run = uuid.uuid4().hex[:10]
    topics = {name: f"kcat-{name.removesuffix('_topic')}-{run}" for name in topic_settings()}
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, SEED, start_ns=START_NS, rate=150).batch_for(2_000_000_000)
    (tmp_path / "ticks.csv").write_text(
        "ts,security,price\n"
        + "".join(
            f"{t},{universe.securities[s]},{p!r}\n"
            for t, s, p in zip(
                ticks.ts_event.tolist(), ticks.security.tolist(), ticks.price.tolist(), strict=True
            )
        )
    )
    tick_topic = topics["tick_topic"]
    args = ["publish", str(tmp_path / "ticks.csv"), "--bootstrap", kafka_bootstrap]
    assert main([*args, "--topic", tick_topic, "--as-fast-as-possible"]) == 0

    tencent = universe.security_id("0700")
    price = round(float(universe.prev_close[tencent]) * 1.2, 1)
    kcat_tick = json.dumps(
        {"type": "tick", "security": "0700", "price": price, "ts_event": KCAT_TS}
    )
    kcat_produce(kcat, kafka_bootstrap, tick_topic, "0700", kcat_tick)
    kcat_produce(kcat, kafka_bootstrap, tick_topic, "0700", BAD_TICK)
    raw = kcat_consume(kcat, kafka_bootstrap, tick_topic, "%k\\t%s\\n")
    assert raw[-2:] == [f"0700\t{kcat_tick}", f"0700\t{BAD_TICK}"]
    assert WireCodec().decode_tick(raw[-2].split("\t")[1].encode()) == Tick("0700", price, KCAT_TS)

    members = np.bincount(universe.membership.security, minlength=len(universe.securities))
    expected = int(members[ticks.security].sum() + members[tencent])
    flags = [f"--{name.replace('_', '-')}={topic}" for name, topic in topics.items()]
    command = [sys.executable, "-m", "tickindex.cli.main", "serve", "--bootstrap", kafka_bootstrap]
    service = subprocess.Popen(
        [
            *command,
            *flags,
            f"--group-id=kcat-{run}",
            f"--level-messages={level_messages}",
            "--start-from=earliest",
            "--metrics-port=-1",
            "--log-level=WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        rows: list[tuple[str, int, float, int]] = []
        while len(rows) < expected and time.monotonic() < deadline and service.poll() is None:
            time.sleep(0.3)
            lines = kcat_consume(kcat, kafka_bootstrap, topics["level_topic"], check=False)
            rows = level_rows(lines)
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=60)
    finally:
        service.kill()
    assert service.returncode == 0, err

    rows = level_rows(kcat_consume(kcat, kafka_bootstrap, topics["level_topic"]))
    assert len(rows) == expected
    per_index: dict[str, list[int]] = defaultdict(list)
    for index, _, _, seq in rows:
        per_index[index].append(seq)
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_index.values())
    # The kcat tick moved exactly the indices holding 0700, each upwards (+20% on Tencent).
    holding = universe.membership.index[universe.membership.security == tencent]
    moved = {index for index, ts, _, _ in rows if ts == KCAT_TS}
    assert moved == {universe.index_codes[i] for i in holding.tolist()}
    for code in moved:
        series = [(seq, level) for index, _, level, seq in rows if index == code]
        assert series[-1][1] > series[-2][1]

    letters = kcat_consume(kcat, kafka_bootstrap, topics["dead_letter_topic"], "%h\\t%s\\n")
    assert len(letters) == 1
    headers, value = letters[0].split("\t")
    assert value == BAD_TICK and "tickindex.reason=undecodable" in headers
