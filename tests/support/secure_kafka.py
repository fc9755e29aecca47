"""A second, throw-away Kafka broker with a SASL_SSL listener (SCRAM), for the security tests.

The CA, the broker's certificate and its keystore are made here with ``openssl`` and ``keytool``;
``deploy/kafka/kafka.sh`` starts the broker in its own run dir on free ports (the shared broker is
left alone) with the jars of the main run dir, so no Maven download is needed when the project's
broker has been started once.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO
from tests.support.real_parts import require_tool

KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
MAIN_LIB = REPO / "deploy" / "kafka" / ".run" / "lib"
USER = "alice"


@dataclass(frozen=True)
class SecureBroker:
    """Where and how to reach the SASL_SSL listener."""

    bootstrap: str
    cafile: Path
    username: str
    password: str

    def flags(self) -> list[str]:
        """Command-line flags of a tickindex command (the password goes in the environment)."""
        return [
            "--bootstrap",
            self.bootstrap,
            "--security-protocol",
            "SASL_SSL",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            self.username,
            "--ssl-cafile",
            str(self.cafile),
        ]

    def env(self, password: str | None = None) -> dict[str, str]:
        """The environment of a command: this process's, plus the SASL password."""
        return os.environ | {"TICKINDEX_SASL_PASSWORD": password or self.password}


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on right now (bound and released at once)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run(*command: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"{command[0]} failed: {result.stderr[-2000:]}")


def make_certificates(folder: Path, store_password: str) -> tuple[Path, Path]:
    """A test CA and a broker keystore (JKS) for 127.0.0.1 signed by it: (CA PEM, keystore)."""
    openssl, keytool = require_tool("openssl"), require_tool("keytool")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broker.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _run(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "2", "-subj", "/CN=tickindex test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)  # fmt: skip
    _run(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
         "-out", "broker.csr", "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    _run(openssl, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "broker.pem", "-days", "2", "-extfile", "broker.ext",
         cwd=folder)  # fmt: skip
    _run(openssl, "pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key",
         "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
         "-passout", f"pass:{store_password}", cwd=folder)  # fmt: skip
    _run(keytool, "-importkeystore", "-noprompt", "-srckeystore", "broker.p12",
         "-srcstoretype", "PKCS12", "-srcstorepass", store_password,
         "-destkeystore", "broker.jks", "-deststoretype", "JKS",
         "-deststorepass", store_password, "-destkeypass", store_password, cwd=folder)  # fmt: skip
    return folder / "ca.pem", folder / "broker.jks"


def _kafka_sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@contextmanager
def secure_broker(folder: Path) -> Iterator[SecureBroker]:
    """Start a broker with a SASL_SSL (SCRAM-SHA-512) listener; always stopped on exit."""
    require_tool("java")
    store_password = secrets.token_hex(12)
    password = "pw-" + secrets.token_hex(12)
    cafile, keystore = make_certificates(folder / "certs", store_password)
    plain_port, controller_port, secure_port = free_ports(3)
    env = os.environ | {
        "KAFKA_RUN_DIR": str(folder / "run"),
        "KAFKA_PORT": str(plain_port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_SASL_SSL_PORT": str(secure_port),
        "KAFKA_SSL_KEYSTORE": str(keystore),
        "KAFKA_SSL_KEYSTORE_PASSWORD": store_password,
        "KAFKA_SCRAM_USERS": f"{USER}:{password}",
        "KAFKA_HEAP_OPTS": "-Xmx384m -Xms384m",
        "KAFKA_STOP_TIMEOUT": "15",
    }
    if (MAIN_LIB / ".pom.sha256").is_file():
        env["KAFKA_LIB_DIR"] = str(MAIN_LIB)
    try:
        started = _kafka_sh("start", env)
        if started.returncode != 0:
            raise AssertionError(f"secured broker did not start:\n{started.stdout}{started.stderr}")
        yield SecureBroker(f"127.0.0.1:{secure_port}", cafile, USER, password)
    finally:
        _kafka_sh("stop", env)
