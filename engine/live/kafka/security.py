"""Kafka client security (TLS, SASL): one place turns the settings into aiokafka arguments.

Every Kafka client of tickindex (the service's consumer, producers and admin clients, the output
process, the checkpoint loader, ``simulate``, ``publish``, ``watch``, ``record``) is built with
``bootstrap_servers=...`` plus ``**kafka_security_options(settings)``, where ``settings`` is a
``ServiceConfig`` (a ``KafkaSecurity`` with the service's other settings) or a ``KafkaSecurity``.

Secrets (the SASL password, the TLS key password) come from the environment
(``TICKINDEX_SASL_PASSWORD``, ``TICKINDEX_SSL_KEY_PASSWORD``), a config file or a file named by
``sasl_password_file`` / ``ssl_key_password_file``; there is no command-line flag for them, so
they never show in ``ps``. They are left out of reprs and never put into error messages.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from aiokafka.errors import AuthenticationFailedError, KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from engine.core.errors import BrokerError
from engine.live.config import ENV_PREFIX, ConfigError
from engine.live.security_settings import (
    HIDDEN,
    SASL_MECHANISMS,
    SECRET_FIELDS,
    SECURITY_FIELDS,
    SECURITY_PROTOCOLS,
    KafkaSecurity,
    SaslMechanism,
    SecurityProtocol,
    safe_fields,
)


def load_security(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> KafkaSecurity:
    """Security settings from ``TICKINDEX_<SETTING>`` variables < ``overrides`` (flags).

    Raises
    ------
    ConfigError
        A value of the wrong type or outside its choices (the message names the setting).
    """
    merged: dict[str, Any] = {}
    for name in SECURITY_FIELDS:
        value = (env or {}).get(ENV_PREFIX + name.upper())
        if value is not None:
            merged[name] = value
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return msgspec.convert(merged, KafkaSecurity, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid Kafka security setting: {exc}") from exc


def kafka_security_options(settings: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: protocol, SASL credentials, TLS context.

    Files are read here (password files, CA, certificate, key), so call it when the client is
    built; it is cheap. The result holds secrets: never log it.

    Raises
    ------
    ConfigError
        An inconsistent setting or a file that cannot be read; the message names the setting
        and the file, never a secret.
    """
    protocol = settings.security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        options |= _sasl_options(settings)
    elif any(getattr(settings, name) is not None for name in _SASL_SETTINGS):
        raise ConfigError(
            f"SASL settings need security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}"
        )
    if protocol.endswith("SSL"):
        options["ssl_context"] = _ssl_context(settings)
    else:
        given = [name for name in _SSL_FILES if getattr(settings, name) is not None]
        if given:
            raise ConfigError(f"{given[0]} needs security_protocol SSL or SASL_SSL, not {protocol}")
    return options


_SSL_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
# Not the password: TICKINDEX_SASL_PASSWORD may be set for a whole environment.
_SASL_SETTINGS = ("sasl_mechanism", "sasl_username", "sasl_password_file")


def _sasl_options(settings: KafkaSecurity) -> dict[str, Any]:
    mechanism = settings.sasl_mechanism
    if mechanism is None:
        raise ConfigError(
            f"security_protocol {settings.security_protocol} needs sasl_mechanism "
            f"({', '.join(SASL_MECHANISMS)})"
        )
    if mechanism not in SASL_MECHANISMS:
        raise ConfigError(f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}")
    if not settings.sasl_username:
        raise ConfigError(f"sasl_mechanism {mechanism} needs sasl_username")
    password = _secret(
        settings.sasl_password,
        settings.sasl_password_file,
        "sasl_password",
        "sasl_password_file",
    )
    if password is None:
        raise ConfigError(
            f"sasl_mechanism {mechanism} needs a password: set {ENV_PREFIX}SASL_PASSWORD "
            "or sasl_password_file"
        )
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": settings.sasl_username,
        "sasl_plain_password": password,
    }


def _ssl_context(settings: KafkaSecurity) -> ssl.SSLContext:
    for name in _SSL_FILES:
        path = getattr(settings, name)
        if path is not None:
            _check_readable(path, name)
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        raise ConfigError("give both ssl_certfile and ssl_keyfile, or neither")
    key_password = _secret(
        settings.ssl_key_password,
        settings.ssl_key_password_file,
        "ssl_key_password",
        "ssl_key_password_file",
    )
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
            password=key_password,
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        # The reason only (such as "[SSL] PEM lib"): never the password.
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(
            f"cannot build the TLS context from ssl_cafile={settings.ssl_cafile!r}, "
            f"ssl_certfile={settings.ssl_certfile!r}, ssl_keyfile={settings.ssl_keyfile!r}: "
            f"{reason} (wrong file or key password?)"
        ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context


def _secret(value: str | None, file: str | None, name: str, file_name: str) -> str | None:
    """A secret given directly or in a file (not both); its text without the final newline."""
    if value is not None and file is not None:
        raise ConfigError(f"give {name} or {file_name}, not both")
    if file is not None:
        text = _check_readable(file, file_name).rstrip("\r\n")
        if not text:
            raise ConfigError(f"{file_name} {file}: the file is empty")
        return text
    if value is not None and not value:
        raise ConfigError(f"{name} is empty")
    return value


def _check_readable(path: str, name: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{name} {path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{name} {path}: cannot read it: {exc.strerror}") from None


def connection_error(
    exc: KafkaError, bootstrap: str, security: KafkaSecurity | None = None
) -> BrokerError:
    """A ``BrokerError`` for a client that could not connect, naming protocol and user.

    aiokafka logs why a bootstrap failed (refused login, TLS handshake) on the line before and
    raises a bare "Unable to bootstrap"; a refused login it raises itself is not retriable.
    """
    how = ""
    if security is not None and security.security_protocol != "PLAINTEXT":
        how = f" over {security.security_protocol}"
        if security.security_protocol.startswith("SASL_"):
            how += f" as {security.sasl_username!r} ({security.sasl_mechanism})"
    if isinstance(exc, AuthenticationFailedError | SaslAuthenticationFailed):
        error = BrokerError(
            f"Kafka at {bootstrap} refused the credentials{how} ({type(exc).__name__}): check "
            "sasl_username, the password and sasl_mechanism"
        )
        error.retriable = False
        return error
    return BrokerError(f"cannot connect to Kafka at {bootstrap}{how}: {exc}")


__all__ = [
    "HIDDEN",
    "SASL_MECHANISMS",
    "SECRET_FIELDS",
    "SECURITY_FIELDS",
    "SECURITY_PROTOCOLS",
    "KafkaSecurity",
    "SaslMechanism",
    "SecurityProtocol",
    "connection_error",
    "kafka_security_options",
    "load_security",
    "safe_fields",
]
