"""serve, simulate, publish, watch and record against a real broker's SASL_SSL listener.

The module's broker (``tests.support.secure_kafka``) is a second one on free ports, with a CA and a
keystore made for the test; it is stopped at the end even when a test fails.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.live.kafka.security import KafkaSecurity, kafka_security_options
from engine.refdata.builtin import load_builtin_universe
from tests.support.secure_kafka import SecureBroker, secure_broker

TICKINDEX = [sys.executable, "-m", "tickindex.cli.main"]
START_NS = 1_795_138_200_000_000_000
FILE_TICKS = 300


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with secure_broker(tmp_path_factory.mktemp("secure-kafka")) as started:
        yield started


def security_of(broker: SecureBroker) -> KafkaSecurity:
    return KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=broker.username,
        sasl_password=broker.password,
        ssl_cafile=str(broker.cafile),
    )


def run(broker: SecureBroker, *args: str, password: str | None = None) -> tuple[int, str, str]:
    result = subprocess.run(
        [*TICKINDEX, *args, *broker.flags()],
        env=broker.env(password),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def write_ticks(path: Path) -> None:
    securities = load_builtin_universe().securities
    rows = [
        f"{START_NS + i * 1_000_000},{securities[i % len(securities)]},{100.0 + i % 7}"
        for i in range(FILE_TICKS)
    ]
    path.write_text("ts,security,price\n" + "\n".join(rows) + "\n")


async def wait_until_consumed(broker: SecureBroker, topic: str, group: str) -> None:
    """Until the service has committed the end of the tick topic (its one partition)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **kafka_security_options(security_of(broker)),
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        end = (await consumer.end_offsets([partition]))[partition]
        deadline = time.monotonic() + 30
        while (await consumer.committed(partition) or 0) < end:
            assert time.monotonic() < deadline, "serve did not consume the ticks in 30 s"
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


def count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in {text!r}"
    return int(found.group(1).replace(",", ""))


@pytest.mark.kafka
def test_every_command_over_sasl_ssl(broker: SecureBroker, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    ticks, levels, group = f"ticks-{tag}", f"levels-{tag}", f"group-{tag}"
    topics = {
        "--tick-topic": ticks,
        "--level-topic": levels,
        "--dead-letter-topic": f"dlq-{tag}",
        "--state-topic": f"state-{tag}",
        "--control-topic": f"control-{tag}",
        "--audit-topic": f"audit-{tag}",
        "--ohlc-topic": f"ohlc-{tag}",
    }
    serve_log = tmp_path / "serve.log"
    # DEBUG: not even aiokafka's debug lines may show the password. A file, not a pipe, so
    # that the log cannot fill a pipe and stall the service.
    with serve_log.open("w") as log:
        serve = subprocess.Popen(
            [*TICKINDEX, "serve", *broker.flags(), "--group-id", group, "--metrics-port", "-1",
             "--log-level", "DEBUG", *(part for pair in topics.items() for part in pair)],
            env=broker.env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
    try:
        tick_file = tmp_path / "ticks.csv"
        write_ticks(tick_file)
        code, out, err = run(broker, "publish", str(tick_file), "--as-fast-as-possible",
                             "--topic", ticks)  # fmt: skip
        assert code == 0, err
        assert count(r"publish: ([\d,]+) ticks", out) == FILE_TICKS
        code, out, err = run(broker, "simulate", "--duration", "1", "--seed", "7", "--topic", ticks)
        assert code == 0, err
        simulated = count(r"simulate: ([\d,]+) ticks", out)
        assert simulated > 0
        asyncio.run(wait_until_consumed(broker, ticks, group))
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    serve_err = serve_log.read_text()
    assert serve.returncode == 0, serve_err[-3000:]
    assert "Authenticated as alice via SCRAM-SHA-512" in serve_err
    assert count(r"stopped cleanly: ([\d,]+) ticks in", serve_err) == FILE_TICKS + simulated
    published = count(r"ticks in, ([\d,]+) levels out", serve_err)
    assert published > FILE_TICKS

    readers = {
        name: subprocess.Popen(
            [*TICKINDEX, name, *broker.flags(), "--topic", levels, "--from-beginning",
             "--duration", "6", *extra],
            env=broker.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra in (("watch", ["--refresh", "1"]), ("record", ["--out-dir", str(tmp_path)]))
    }  # fmt: skip
    results = {name: process.communicate(timeout=60) for name, process in readers.items()}
    for name, process in readers.items():
        assert process.returncode == 0, results[name][1]
    assert count(r"watch: ([\d,]+) levels", results["watch"][1]) == published
    assert count(r"record: ([\d,]+) levels written", results["record"][1]) == published
    files = list(tmp_path.glob("levels-*.csv"))
    assert files
    assert sum(len(f.read_text().splitlines()) - 1 for f in files) == published
    for text in (serve_err, *(part for result in results.values() for part in result)):
        assert broker.password not in text
        assert "Traceback" not in text


@pytest.mark.kafka
def test_a_wrong_password_fails_cleanly_without_echoing_it(
    broker: SecureBroker, tmp_path: Path
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    topic = f"ticks-{uuid.uuid4().hex[:10]}"
    tick_file = tmp_path / "ticks.csv"
    write_ticks(tick_file)
    commands = {
        "serve": ["serve", "--metrics-port", "-1", "--tick-topic", topic],
        "simulate": ["simulate", "--duration", "1", "--topic", topic],
        "publish": ["publish", str(tick_file), "--as-fast-as-possible", "--topic", topic],
        "watch": ["watch", "--duration", "5", "--topic", topic],
        "record": ["record", "--duration", "5", "--topic", topic, "--out-dir", str(tmp_path)],
    }
    processes = {
        name: subprocess.Popen(
            [*TICKINDEX, *args, *broker.flags()],
            env=broker.env(wrong),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    for name, process in processes.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2, (name, err)
        assert f"tickindex {name}: error:" in err
        assert "invalid credentials" in err or "refused the credentials" in err, (name, err)
        assert "Traceback" not in err
        assert wrong not in out + err
        assert broker.password not in out + err
