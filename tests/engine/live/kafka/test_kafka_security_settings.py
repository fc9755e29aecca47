"""TLS/SASL settings: flags on every Kafka command, env and config file for serve, secrets hidden,
bad settings a ``ConfigError`` (exit 2, no traceback, no secret). No broker needed."""

from __future__ import annotations

import ast
import logging
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from engine.live.config import ConfigError, ServiceConfig, load_config
from engine.live.kafka.security import (
    KafkaSecurity,
    connection_error,
    kafka_security_options,
    load_security,
)
from tests.support.paths import REPO
from tests.support.real_parts import require_tool
from tickindex.cli.main import main

SECRET = "s3cr3t-Pa55w0rd"
KAFKA_COMMANDS = ("serve", "simulate", "publish", "watch", "record")
FLAGS = (
    "--security-protocol",
    "--sasl-mechanism",
    "--sasl-username",
    "--sasl-password-file",
    "--ssl-cafile",
    "--ssl-certfile",
    "--ssl-keyfile",
    "--ssl-key-password-file",
    "--ssl-check-hostname",
    "--no-ssl-check-hostname",
)


def sasl(**fields: str | bool | None) -> KafkaSecurity:
    settings: dict[str, str | bool | None] = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "alice",
        "sasl_password": SECRET,
    }
    return KafkaSecurity(**(settings | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("command", KAFKA_COMMANDS)
def test_every_kafka_command_has_the_security_flags_and_no_password_flag(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text, flag
    assert "--sasl-password " not in text and "--sasl-password\n" not in text
    assert "--ssl-key-password " not in text and "--ssl-key-password\n" not in text


@pytest.mark.parametrize("command", KAFKA_COMMANDS)
def test_a_password_flag_is_refused(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--bootstrap", "127.0.0.1:1", "--sasl-password", SECRET])
    assert exited.value.code == 2
    assert "--sasl-password is not accepted" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([command, "--bootstrap", "127.0.0.1:1", "--ssl-key-password", SECRET])
    assert exited.value.code == 2
    assert "set TICKINDEX_SSL_KEY_PASSWORD" in capsys.readouterr().err


def test_service_config_takes_security_from_env() -> None:
    env = {
        "TICKINDEX_SECURITY_PROTOCOL": "SASL_SSL",
        "TICKINDEX_SASL_MECHANISM": "SCRAM-SHA-256",
        "TICKINDEX_SASL_USERNAME": "alice",
        "TICKINDEX_SASL_PASSWORD": SECRET,
        "TICKINDEX_SSL_CAFILE": "/etc/ca.pem",
        "TICKINDEX_SSL_CHECK_HOSTNAME": "false",
    }
    config = load_config(env=env)
    assert config.security_protocol == "SASL_SSL"
    assert config.sasl_mechanism == "SCRAM-SHA-256"
    assert config.sasl_username == "alice"
    assert config.sasl_password == SECRET
    assert config.ssl_cafile == "/etc/ca.pem"
    assert config.ssl_check_hostname is False
    assert ServiceConfig().security_protocol == "PLAINTEXT"


def test_service_config_takes_security_from_a_config_file(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(SECRET + "\n")
    file = tmp_path / "serve.toml"
    file.write_text(
        'security_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "PLAIN"\n'
        f'sasl_username = "bob"\nsasl_password_file = "{password_file}"\n'
    )
    config = load_config(file, env={"TICKINDEX_SASL_USERNAME": "carol"})
    assert (config.security_protocol, config.sasl_mechanism) == ("SASL_PLAINTEXT", "PLAIN")
    assert config.sasl_username == "carol"  # env wins over the file
    options = kafka_security_options(config)
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "carol",
        "sasl_plain_password": SECRET,
    }


def test_commands_other_than_serve_take_security_from_env_and_flags() -> None:
    env = {"TICKINDEX_SECURITY_PROTOCOL": "SSL", "TICKINDEX_SSL_CHECK_HOSTNAME": "0"}
    assert load_security(env) == KafkaSecurity(security_protocol="SSL", ssl_check_hostname=False)
    flags = {"security_protocol": "SASL_SSL", "ssl_check_hostname": None}
    assert load_security(env, flags).security_protocol == "SASL_SSL"
    with pytest.raises(ConfigError, match="security_protocol"):
        load_security({"TICKINDEX_SECURITY_PROTOCOL": "KERBEROS"})


def test_secrets_never_show_in_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    config = ServiceConfig(sasl_password=SECRET, ssl_key_password=SECRET + "2")
    security = sasl(ssl_key_password=SECRET + "2")
    for text in (repr(config), str(config), f"{config!r}", repr(security), str(security)):
        assert SECRET not in text
        assert "sasl_password='<hidden>'" in text
        assert "ssl_key_password='<hidden>'" in text
    assert "sasl_password=None" in repr(ServiceConfig())
    assert SECRET not in repr(list(config.__rich_repr__()))
    with caplog.at_level(logging.INFO):
        logging.getLogger("tickindex.test").info("config %s %r", config, security)
    assert "<hidden>" in caplog.text and SECRET not in caplog.text


def test_plaintext_needs_no_security_arguments() -> None:
    assert kafka_security_options(ServiceConfig()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_a_verifying_tls_context(tmp_path: Path) -> None:
    ca = _ca_pem(tmp_path)
    options = kafka_security_options(sasl(security_protocol="SASL_SSL", ssl_cafile=str(ca)))
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert options["sasl_plain_password"] == SECRET
    relaxed = sasl(security_protocol="SASL_SSL", ssl_cafile=str(ca), ssl_check_hostname=False)
    assert not kafka_security_options(relaxed)["ssl_context"].check_hostname


def _ca_pem(folder: Path) -> Path:
    openssl = require_tool("openssl")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
         "-out", "made.pem", "-days", "1", "-subj", "/CN=test"],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip
    return folder / "made.pem"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sasl_mechanism": None}, "needs sasl_mechanism"),
        ({"sasl_username": None}, "needs sasl_username"),
        ({"sasl_password": None}, "needs a password: set TICKINDEX_SASL_PASSWORD"),
        ({"sasl_password": ""}, "sasl_password is empty"),
        ({"sasl_password_file": "/nonexistent/pw"}, "give sasl_password or sasl_password_file"),
        ({"security_protocol": "PLAINTEXT"}, "SASL settings need security_protocol"),
        (
            {
                "security_protocol": "SSL",
                "sasl_mechanism": None,
                "sasl_username": None,
                "sasl_password": None,
                "sasl_password_file": "/etc/hostname",
            },
            "SASL settings need security_protocol",
        ),
        ({"security_protocol": "SASL_SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "ssl_cafile"),
        ({"ssl_cafile": "/etc/hostname"}, "ssl_cafile needs security_protocol SSL or SASL_SSL"),
    ],
)
def test_inconsistent_settings_are_a_config_error_without_the_secret(
    settings: dict[str, str | None], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as raised:
        kafka_security_options(sasl(**settings))
    assert SECRET not in str(raised.value)


def test_unreadable_files_name_the_setting_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError, match=f"sasl_password_file {missing}: cannot read it"):
        kafka_security_options(sasl(sasl_password=None, sasl_password_file=str(missing)))
    with pytest.raises(ConfigError, match=r"sasl_password_file .*: cannot read it"):
        kafka_security_options(sasl(sasl_password=None, sasl_password_file=str(tmp_path)))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        kafka_security_options(sasl(sasl_password=None, sasl_password_file=str(empty)))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        kafka_security_options(sasl(sasl_password=None, sasl_password_file=str(binary)))


def test_a_bad_key_or_key_password_is_a_config_error_without_the_password(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-keyout", "client.key", "-out",
         "client.pem", "-days", "1", "-subj", "/CN=client", "-passout", f"pass:{SECRET}"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    ssl_files = {
        "security_protocol": "SSL",
        "ssl_certfile": str(tmp_path / "client.pem"),
        "ssl_keyfile": str(tmp_path / "client.key"),
    }
    good = KafkaSecurity(**ssl_files, ssl_key_password=SECRET)  # type: ignore[arg-type]
    assert isinstance(kafka_security_options(good)["ssl_context"], ssl.SSLContext)
    wrong = KafkaSecurity(**ssl_files, ssl_key_password="not-" + SECRET)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cannot build the TLS context") as raised:
        kafka_security_options(wrong)
    assert SECRET not in str(raised.value)
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    garbage = KafkaSecurity(
        security_protocol="SSL",
        ssl_certfile=str(tmp_path / "garbage.pem"),
        ssl_keyfile=str(tmp_path / "garbage.pem"),
    )
    with pytest.raises(ConfigError, match="cannot build the TLS context"):
        kafka_security_options(garbage)
    with pytest.raises(ConfigError, match="both ssl_certfile and ssl_keyfile"):
        kafka_security_options(
            KafkaSecurity(security_protocol="SSL", ssl_certfile=ssl_files["ssl_certfile"])
        )


def test_config_errors_do_not_echo_a_password(tmp_path: Path) -> None:
    env = {"TICKINDEX_SASL_PASSWORD": SECRET, "TICKINDEX_SECURITY_PROTOCOL": "bogus"}
    with pytest.raises(ConfigError) as raised:
        load_config(env=env)
    assert SECRET not in str(raised.value)
    file = tmp_path / "serve.toml"
    file.write_text("sasl_password = 987654321987\n")
    with pytest.raises(ConfigError) as raised:
        load_config(file)
    assert "987654321987" not in str(raised.value)


def test_a_refused_login_is_not_retriable() -> None:
    refused = connection_error(SaslAuthenticationFailed(), "h:1", sasl())
    assert not refused.retriable
    assert "refused the credentials over SASL_PLAINTEXT as 'alice'" in str(refused)
    unreachable = connection_error(KafkaConnectionError("down"), "h:1", sasl())
    assert unreachable.retriable and SECRET not in str(unreachable)


@pytest.mark.slow
@pytest.mark.parametrize("command", KAFKA_COMMANDS)
def test_bad_settings_exit_2_without_traceback_or_secret(command: str, tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("ts,security,price\n1,0700,400.0\n")
    extra = {
        "serve": ["--metrics-port", "-1"],
        "publish": [str(ticks)],
        "record": ["--out-dir", str(tmp_path)],
    }.get(command, [])
    result = subprocess.run(
        [sys.executable, "-m", "tickindex.cli.main", command, *extra,
         "--bootstrap", "127.0.0.1:1", "--security-protocol", "SASL_SSL",
         "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice",
         "--ssl-cafile", str(tmp_path / "no-such-ca.pem")],
        env=os.environ | {"TICKINDEX_SASL_PASSWORD": SECRET},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"tickindex {command}: error: ssl_cafile {tmp_path / 'no-such-ca.pem'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_every_kafka_client_is_built_with_the_security_options() -> None:
    clients = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
    sites = 0
    for folder in ("engine", "producers", "consumers", "tickindex"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                    continue
                if node.func.id not in clients:
                    continue
                sites += 1
                spread = [k.value for k in node.keywords if k.arg is None]
                assert any(
                    isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name)
                    and value.func.id == "kafka_security_options"
                    for value in spread
                ), f"{path.relative_to(REPO)}:{node.lineno}: {node.func.id} without security"
    assert sites >= 11
