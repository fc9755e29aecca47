"""A long broker outage ends in a clean resume: ``serve`` waits, logs a bounded number of
reconnect lines (no traceback), and publishes every level once the broker is back.

The broker here is a private one (``deploy/kafka/kafka.sh`` on free ports and its own run
folder), stopped and started by the test; the shared broker of the other tests is never touched.
Its jars come from the shared broker's run folder (``deploy/kafka/.run/lib``) or
``TICKINDEX_TEST_KAFKA_LIB``; without them ``kafka.sh`` fetches them with Maven.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.refdata.builtin import load_builtin_universe
from tests.support.live import (
    LevelRow,
    LiveTopics,
    assert_same_levels,
    last_seq,
    publish_ticks,
    read_levels,
    replay_levels,
    simulate,
    wait_until,
)
from tests.support.paths import REPO
from tests.support.real_parts import missing_real_part
from tests.support.secure_kafka import free_ports
from tests.support.seed import SEED

pytestmark = pytest.mark.kafka

OUTAGE_SECONDS = 15.0
RECONNECT_LINE_LIMIT = 30  # per message kind: one line per 10 s and process, with margin
# Three producers and a consumer, each retrying every 0.1 s at most (55,000 before the backoff).
MAX_ATTEMPTS_PER_10_S = 2_000


class PrivateBroker:
    """A single-node broker of this test: ``start()``, ``stop()``, ``bootstrap``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.port, self.controller_port = free_ports(2)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.env = os.environ | {
            "KAFKA_RUN_DIR": str(run_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }

    def _script(self, command: str) -> None:
        script = REPO / "deploy" / "kafka" / "kafka.sh"
        done = subprocess.run(
            ["bash", str(script), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"kafka.sh {command}:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")


@pytest.fixture
def private_broker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateBroker]:
    del kafka_bootstrap  # the Kafka tests' requirement: a broker set-up exists
    if shutil.which("java") is None:
        missing_real_part("java is not installed (deploy/install-system-deps.sh installs it)")
    run_dir = tmp_path_factory.mktemp("private-kafka")
    lib = Path(
        os.environ.get("TICKINDEX_TEST_KAFKA_LIB", REPO / "deploy" / "kafka" / ".run" / "lib")
    )
    if lib.is_dir():
        (run_dir / "lib").symlink_to(lib.resolve())
    broker = PrivateBroker(run_dir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def _deduplicated(rows: list[LevelRow]) -> list[LevelRow]:
    seen: set[tuple[str, int]] = set()
    out = []
    for row in rows:
        if (row.code, row.seq) not in seen:
            seen.add((row.code, row.seq))
            out.append(row)
    return out


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
async def test_a_long_outage_ends_in_a_clean_resume(
    private_broker: PrivateBroker, tmp_path: Path, delivery: str
) -> None:
    bootstrap = private_broker.bootstrap
    universe = load_builtin_universe()
    ticks = simulate(universe, 2000, SEED + 51)
    before, after = ticks.slice(0, 1000), ticks.slice(1000, 2000)
    expected = replay_levels(universe, ticks, tmp_path / "replay")
    topics = LiveTopics.unique("outage")
    argv = topics.serve_argv(bootstrap, checkpoint_interval_ms=200, delivery=delivery)
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKINDEX_")}
    with log_path.open("wb") as log_file:
        serve = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:

        async def serving() -> bool:
            assert serve.poll() is None, log_path.read_text(errors="replace")
            return " serving " in log_path.read_text(errors="replace")

        await wait_until(serving, "serve to start", 60)
        await publish_ticks(bootstrap, topics.tick, universe, before)
        first = replay_levels(universe, before, tmp_path / "before")

        async def levels_of(rows: list[LevelRow]) -> bool:
            got = await read_levels(bootstrap, topics.level)
            return last_seq(got) == last_seq(rows)

        await wait_until(lambda: levels_of(first), "levels before the outage", 60)

        await asyncio.to_thread(private_broker.stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        assert serve.poll() is None, "serve exited during the outage"
        await asyncio.to_thread(private_broker.start)

        await publish_ticks(bootstrap, topics.tick, universe, after)
        await wait_until(lambda: levels_of(expected), "every level after the outage", 120)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(timeout=10)
    log = log_path.read_text(errors="replace")
    sys.stdout.write(log[-4000:])

    got = await read_levels(bootstrap, topics.level)
    if delivery == "at-least-once":  # duplicates allowed, dropped by (index, seq)
        got = _deduplicated(got)
    assert_same_levels(got, expected, f"{delivery} levels across the outage vs replay")
    assert "Traceback" not in log
    for kind in ("Unable connect to node", "Unable to update metadata", "Failed fetch messages"):
        count = log.count(kind)
        assert count <= RECONNECT_LINE_LIMIT, f"{count} lines of {kind!r}"
    # No busy reconnect loop behind the rate-limited lines: metadata updates back off.
    suppressed = [int(n) for n in re.findall(r"\((\d+) similar lines suppressed", log)]
    assert max(suppressed, default=0) <= MAX_ATTEMPTS_PER_10_S, suppressed
