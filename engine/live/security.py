"""Kafka client security (TLS, SASL): one place turns the settings into aiokafka arguments.

Every Kafka client of tickindex (the service's consumer, producers and admin clients, the output
process, the checkpoint loader, ``simulate``, ``publish``, ``watch``, ``record``) is built with
``bootstrap_servers=...`` plus ``**kafka_security_options(settings)``, where ``settings`` is a
``ServiceConfig`` or a ``KafkaSecurity``: both have the fields of ``SecuritySettings``.

Secrets (the SASL password, the TLS key password) come from the environment
(``TICKINDEX_SASL_PASSWORD``, ``TICKINDEX_SSL_KEY_PASSWORD``), a config file or a file named by
``sasl_password_file`` / ``ssl_key_password_file``; there is no command-line flag for them, so
they never show in ``ps``. They are left out of reprs and never put into error messages.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
from aiokafka.errors import AuthenticationFailedError, KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from engine.errors import BrokerError
from engine.live.config import ENV_PREFIX, ConfigError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECRET_FIELDS = frozenset({"sasl_password", "ssl_key_password"})
HIDDEN = "<hidden>"


class SecuritySettings(Protocol):
    """The security fields shared by ``ServiceConfig`` and ``KafkaSecurity``."""

    @property
    def security_protocol(self) -> str: ...
    @property
    def sasl_mechanism(self) -> str | None: ...
    @property
    def sasl_username(self) -> str | None: ...
    @property
    def sasl_password(self) -> str | None: ...
    @property
    def sasl_password_file(self) -> str | None: ...
    @property
    def ssl_cafile(self) -> str | None: ...
    @property
    def ssl_certfile(self) -> str | None: ...
    @property
    def ssl_keyfile(self) -> str | None: ...
    @property
    def ssl_key_password(self) -> str | None: ...
    @property
    def ssl_key_password_file(self) -> str | None: ...
    @property
    def ssl_check_hostname(self) -> bool: ...


class KafkaSecurity(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a command connects to Kafka: plaintext, TLS, SASL or SASL over TLS.

    Attributes
    ----------
    security_protocol : {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
        Kafka's ``security.protocol``.
    sasl_mechanism : {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} or None
        Required with the SASL protocols.
    sasl_username : str or None
        SASL user.
    sasl_password, sasl_password_file : str or None
        The SASL password, or a file holding it (one of them, with a SASL mechanism).
    ssl_cafile : str or None
        CA bundle (PEM) that signed the brokers' certificates; None: the system's CAs.
    ssl_certfile, ssl_keyfile : str or None
        Client certificate and key (PEM) for brokers that require client authentication.
    ssl_key_password, ssl_key_password_file : str or None
        Password of an encrypted ``ssl_keyfile``, or a file holding it.
    ssl_check_hostname : bool
        Check that the broker's certificate names the host connected to.
    """

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = None
    ssl_key_password_file: str | None = None
    ssl_check_hostname: bool = True

    def __repr__(self) -> str:
        return f"KafkaSecurity({', '.join(f'{k}={v!r}' for k, v in safe_fields(self))})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return list(safe_fields(self))


SECURITY_FIELDS: tuple[str, ...] = KafkaSecurity.__struct_fields__


def safe_fields(settings: msgspec.Struct) -> Iterator[tuple[str, object]]:
    """``(name, value)`` of every field of a settings struct, secrets replaced by ``<hidden>``."""
    for name in settings.__struct_fields__:
        value = getattr(settings, name)
        yield name, HIDDEN if name in SECRET_FIELDS and value is not None else value


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


def kafka_security_options(settings: SecuritySettings) -> dict[str, Any]:
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


def _sasl_options(settings: SecuritySettings) -> dict[str, Any]:
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


def _ssl_context(settings: SecuritySettings) -> ssl.SSLContext:
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
    exc: KafkaError, bootstrap: str, security: SecuritySettings | None = None
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
