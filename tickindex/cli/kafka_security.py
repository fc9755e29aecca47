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


def add_password_flag_guards(parser: argparse.ArgumentParser) -> None:
    """Hidden ``--sasl-password`` and ``--ssl-key-password`` that exit 2 with a hint."""
    for name in SECRET_FIELDS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            action=RefusePasswordFlag,
            help=argparse.SUPPRESS,
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
        help="Kafka security protocol (default: PLAINTEXT)",
    )
    group.add_argument("--sasl-mechanism", choices=SASL_MECHANISMS, help="SASL mechanism")
    group.add_argument("--sasl-username", metavar="NAME", help="SASL user name")
    group.add_argument(
        "--sasl-password-file",
        metavar="FILE",
        help="file holding the SASL password (else $TICKINDEX_SASL_PASSWORD)",
    )
    group.add_argument(
        "--ssl-cafile", metavar="FILE", help="CA bundle (PEM) of the brokers' certificates"
    )
    group.add_argument("--ssl-certfile", metavar="FILE", help="client certificate (PEM)")
    group.add_argument("--ssl-keyfile", metavar="FILE", help="client private key (PEM)")
    group.add_argument(
        "--ssl-key-password-file",
        metavar="FILE",
        help="file holding the client key's password (else $TICKINDEX_SSL_KEY_PASSWORD)",
    )
    group.add_argument(
        "--ssl-check-hostname",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="check the broker certificate's host name (default: yes)",
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
