"""``tickindex record --format parquet --group-id`` killed outright (SIGKILL) mid-stream and
restarted loses no level: every published level is in the finished parts, a level in two parts
only as the documented duplicate by ``(index, seq)``, and no part file is unreadable."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaProducer

from engine.wire import WireCodec
from tests.support.level_topic import hk, levels, unique
from tests.support.live import wait_until
from tests.support.paths import REPO

TS = hk("2026-11-20 10:00")
CODES = ("HSI", "HSCEI")
Row = tuple[str, int, int, float]  # index, seq, ts, level


class Publisher:
    """Level messages put on ``topic`` one every ~20 ms until ``finish`` (each index's seq
    counting up, two levels a message); ``published`` holds every level acknowledged."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.published: set[Row] = set()
        self.finishing = asyncio.Event()

    async def run(self, after_finish: int = 25) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        codec = WireCodec("json")
        await producer.start()
        try:
            next_seq, sent, left = dict.fromkeys(CODES, 1), 0, after_finish
            while left > 0 and sent < 3_000:
                code = CODES[sent % 2]
                seq = next_seq[code]
                next_seq[code] += 2
                message = levels(code, [seq, seq + 1], ts=TS)
                await producer.send_and_wait(self.topic, codec.encode(message), key=code.encode())
                self.published.update(
                    (code, s, t, lv)
                    for s, t, lv in zip(message.seq, message.ts_event, message.level, strict=True)
                )
                sent += 1
                left -= self.finishing.is_set()
                await asyncio.sleep(0.02)
        finally:
            await producer.stop()


def recorder(
    bootstrap: str, topic: str, group: str, out: Path, log: Path
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tickindex.cli.main", "record", "--bootstrap", bootstrap]
    argv += ["--topic", topic, "--out-dir", str(out), "--format", "parquet", "--group-id", group]
    argv += ["--from-beginning", "--part-seconds", "0.5", "--duration", "120"]
    with log.open("ab") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


def finished_rows(out: Path) -> list[Row]:
    """Every level in the finished parts (each part read whole: it must be readable)."""
    rows: list[Row] = []
    for part in sorted(out.glob("levels-*.parquet")):
        table = pq.read_table(part, columns=["index", "seq", "ts", "level"])
        columns = [table.column(name).to_pylist() for name in ("index", "seq", "ts", "level")]
        rows.extend(zip(*columns, strict=True))
    return rows


@pytest.mark.kafka
async def test_a_killed_parquet_recorder_restarted_loses_no_level(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic, group, out, log = unique("rec-kill"), unique("rec"), tmp_path / "out", tmp_path / "log"
    publisher = Publisher(kafka_bootstrap, topic)
    publishing = asyncio.create_task(publisher.run())
    first = recorder(kafka_bootstrap, topic, group, out, log)
    try:

        async def parts_finished_and_one_open() -> bool:
            """Stops the recorder while it has finished parts and an unfinished one."""
            assert first.poll() is None, log.read_text(errors="replace")
            if not list(out.glob("*.parquet")):
                return False
            first.send_signal(signal.SIGSTOP)
            if list(out.glob("*.partial")):
                return True
            first.send_signal(signal.SIGCONT)
            return False

        await wait_until(parts_finished_and_one_open, "finished parts and an open one", 60)
        assert not publishing.done()  # mid-stream
        first.kill()
        first.wait(10)
        leftovers = list(out.glob("*.partial"))
        assert leftovers
        publisher.finishing.set()
        await publishing
        second = recorder(kafka_bootstrap, topic, group, out, log)
        try:

            async def everything_recorded() -> bool:
                assert second.poll() is None, log.read_text(errors="replace")
                return {(i, q) for i, q, _, _ in finished_rows(out)} >= {
                    (i, q) for i, q, _, _ in publisher.published
                }

            await wait_until(everything_recorded, "every published level in the parts", 60)
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0, log.read_text(errors="replace")
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()
        publishing.cancel()
    rows = finished_rows(out)
    assert not list(out.glob("*.partial"))  # the leftover removed, the last part finished
    assert set(rows) == publisher.published  # nothing lost, nothing else
    duplicated = len(rows) - len(set(rows))
    assert duplicated == len(rows) - len({(index, seq) for index, seq, _, _ in rows})
    assert "removed" in log.read_text(errors="replace")  # the killed recorder's .partial
