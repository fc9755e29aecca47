"""Property: any security settings (env text, files of any content) give a ``KafkaSecurity`` and
client options, or a ``ConfigError`` without the secret; never another exception."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.live.config import ConfigError, load_config
from engine.live.kafka.security import (
    SECURITY_FIELDS,
    KafkaSecurity,
    kafka_security_options,
    load_security,
)

SECRET = "fuzz-Secret-0451"
FILE_FIELDS = {
    "sasl_password_file",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_key_password_file",
}
CHOICES = {
    "security_protocol": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", "sasl_ssl", ""],
    "sasl_mechanism": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", ""],
    "ssl_check_hostname": ["true", "false", "0", "1", "maybe", ""],
}


@pytest.fixture(scope="module")
def files() -> Iterator[list[str]]:
    """Paths of every kind: missing, a folder, empty, binary, huge line, a real CA, text."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "empty").write_text("")
        (folder / "binary").write_bytes(b"\xff\xfe\x00\x80" * 64)
        (folder / "text").write_text(SECRET + "\n")
        (folder / "long").write_text("x" * 1_000_000)
        (folder / "pem").write_text(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
        ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
        yield [
            str(folder / "missing"),
            str(folder),
            *(str(folder / n) for n in ("empty", "binary", "text", "long", "pem")),
            str(ca),
            "",
        ]


def settings_strategy(files: list[str]) -> st.SearchStrategy[dict[str, str]]:
    value: dict[str, st.SearchStrategy[str]] = {}
    for name in SECURITY_FIELDS:
        if name in FILE_FIELDS:
            value[name] = st.sampled_from(files)
        elif name in CHOICES:
            value[name] = st.sampled_from(CHOICES[name]) | st.text(max_size=20)
        elif name in {"sasl_password", "ssl_key_password"}:
            value[name] = st.just(SECRET) | st.just("")
        else:
            value[name] = st.text(max_size=40)
    return st.fixed_dictionaries({}, optional=value)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_settings_give_options_or_a_config_error(files: list[str], data: st.DataObject) -> None:
    raw = data.draw(settings_strategy(files))
    env = {f"TICKINDEX_{name.upper()}": text for name, text in raw.items()}
    loaders: tuple[Callable[[], KafkaSecurity], ...] = (
        lambda: load_security(env),
        lambda: load_config(env=env),
    )
    for load in loaders:
        try:
            options = kafka_security_options(load())
        except ConfigError as exc:
            assert SECRET not in str(exc)
            continue
        assert options["security_protocol"] in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        if options["security_protocol"].startswith("SASL_"):
            assert options["sasl_plain_password"]
