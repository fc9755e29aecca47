"""The Kafka security flags of ``simulate``, ``publish``, ``watch`` and ``record``.

``serve`` has the same settings as ``ServiceConfig`` fields (flags, ``TICKINDEX_*`` variables and
its config file). Here too every setting may come from its ``TICKINDEX_<SETTING>`` variable, and
flags win. Passwords have no flag: ``TICKINDEX_SASL_PASSWORD`` / ``TICKINDEX_SSL_KEY_PASSWORD``
or ``--sasl-password-file`` / ``--ssl-key-password-file``.
"""

from __future__ import annotations

import argparse
import os

from engine.live.kafka.security import (
    SASL_MECHANISMS,
    SECRET_FIELDS,
    SECURITY_FIELDS,
    SECURITY_PROTOCOLS,
    KafkaSecurity,
    load_security,
)


class RefusePasswordFlag(argparse.Action):
    """A password flag is refused: it would show in ``ps``. Being an exact match, it also stops
    ``--sasl-password`` from being taken as an abbreviation of ``--sasl-password-file``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        env = f"TICKINDEX_{self.dest.upper()}"
        parser.error(
            f"{option_string} is not accepted (it would show in ps): set {env} or use "
            f"{option_string}-file"
        )


def flag(setting: str) -> str:
    """The command-line flag of a setting: ``ssl_cafile`` -> ``--ssl-cafile``."""
    return "--" + setting.replace("_", "-")


def add_password_flag_guards(parser: argparse.ArgumentParser) -> None:
    """Hidden ``--sasl-password`` and ``--ssl-key-password`` that exit 2 with a hint."""
    for name in SECRET_FIELDS:
        parser.add_argument(
            flag(name),
            dest=name,
            action=RefusePasswordFlag,
            help=argparse.SUPPRESS,
        )


SECURITY_HELP = {
    "security_protocol": "how to connect: PLAINTEXT, TLS (SSL), SASL log-in (SASL_PLAINTEXT) "
    "or both (SASL_SSL)",
    "sasl_mechanism": "SASL mechanism to log in with (needed with the SASL protocols)",
    "sasl_username": "SASL user name to log in as",
    "sasl_password_file": "file holding the SASL password (else $TICKINDEX_SASL_PASSWORD)",
    "ssl_cafile": "CA bundle (PEM) that signed the brokers' certificates (else the system's CAs)",
    "ssl_certfile": "client certificate (PEM), for brokers that require client authentication",
    "ssl_keyfile": "private key (PEM) of the client certificate",
    "ssl_key_password_file": "file holding the client key's password (else "
    "$TICKINDEX_SSL_KEY_PASSWORD)",
    "ssl_check_hostname": "check that the broker's certificate names the host connected to",
}
"""What each security setting does: the help of its flag here and in ``serve``."""

FILE_SETTINGS = (
    "sasl_password_file",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_key_password_file",
)


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    """``--security-protocol``, ``--sasl-*`` and ``--ssl-*`` (every one defaults to its env)."""
    add_password_flag_guards(parser)
    group = parser.add_argument_group(
        "Kafka security",
        "TLS and SASL; each setting may also come from TICKINDEX_<SETTING>. Passwords only "
        "from TICKINDEX_SASL_PASSWORD / TICKINDEX_SSL_KEY_PASSWORD or a file.",
    )
    group.add_argument(
        "--security-protocol",
        choices=SECURITY_PROTOCOLS,
        help=SECURITY_HELP["security_protocol"] + " (default: PLAINTEXT)",
    )
    group.add_argument(
        "--sasl-mechanism", choices=SASL_MECHANISMS, help=SECURITY_HELP["sasl_mechanism"]
    )
    group.add_argument("--sasl-username", metavar="NAME", help=SECURITY_HELP["sasl_username"])
    for name in FILE_SETTINGS:
        group.add_argument(flag(name), metavar="FILE", help=SECURITY_HELP[name])
    group.add_argument(
        "--ssl-check-hostname",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=SECURITY_HELP["ssl_check_hostname"] + " (default: yes)",
    )


def security_from_args(args: argparse.Namespace) -> KafkaSecurity:
    """The security settings of a command: ``TICKINDEX_*`` variables < flags.

    Raises
    ------
    ConfigError
        A setting of the wrong type or outside its choices.
    """
    flags = {
        name: getattr(args, name, None) for name in SECURITY_FIELDS if name not in SECRET_FIELDS
    }
    return load_security(os.environ, flags)
