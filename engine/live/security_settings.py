"""The Kafka security settings (TLS, SASL) shared by every command and the service's config.

Secrets (the SASL password, the TLS key password) are left out of reprs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import msgspec

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECRET_FIELDS = frozenset({"sasl_password", "ssl_key_password"})
HIDDEN = "<hidden>"


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
