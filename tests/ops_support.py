"""Helpers for the operations tests: tokens, certificates, gateway processes.

Used by the auth, TLS, drain, health, metrics, nginx and deploy tests.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.auth import TokenStore, hash_token, parse_table

REPO_ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"listening on (\S+:\d+)")

# Plaintext test tokens; the gateway is only ever given their digests.
TOKENS = {
    "alice": "alice-token-0123456789abcdef",
    "bob": "bob-token-0123456789abcdef",
    "auditor": "auditor-token-0123456789abcdef",
    "ops": "ops-token-0123456789abcdef",
}
GRANTS = {
    "alice": ("acct-a", "rw"),
    "bob": ("acct-b", "rw"),
    "auditor": ("acct-a", "ro"),
    "ops": ("*", "rw"),
}


def token_table() -> str:
    """The token file for TOKENS and GRANTS, holding digests only."""
    return "\n".join(
        f"{name} {hash_token(TOKENS[name])} {accounts} {mode}"
        for name, (accounts, mode) in GRANTS.items()
    )


def token_store() -> TokenStore:
    return TokenStore(parse_table(token_table(), source="test"))


def bearer(name: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``name``'s token."""
    return (("authorization", f"Bearer {TOKENS[name]}"),)


# ----------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Identity:
    """A certificate and its key, as PEM."""

    cert: bytes
    key: bytes
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(self.cert)
        key_path.write_bytes(self.key)
        return cert_path, key_path


def make_ca(name: str = "test-ca") -> Identity:
    return _issue(name, None, ca=True)


def make_cert(issuer: Identity, name: str, *, server: bool) -> Identity:
    return _issue(name, issuer, ca=False, server=server)


def _issue(name: str, issuer: Identity | None, *, ca: bool, server: bool = False) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
    signer = issuer.private_key if issuer else key
    cert = builder.sign(signer, hashes.SHA256())
    return Identity(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert,
        key,
    )


# -------------------------------------------------------------------- processes


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without GATEWAY_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class GatewayProcess:
    """A ``python -m gateway`` process and everything it printed (stderr)."""

    process: subprocess.Popen[str]
    address: str = ""
    output: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(
        cls, args: Sequence[str], *, env: dict[str, str] | None = None, ready_within: float = 30
    ) -> GatewayProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            cwd=REPO_ROOT,
            env=env or clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        gateway = cls(process)
        assert process.stderr is not None
        threading.Thread(target=gateway._pump, args=(process.stderr,), daemon=True).start()
        gateway.address = gateway.wait_for(READY, within=ready_within).group(1)
        return gateway

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def log(self) -> str:
        return "".join(self.output)

    def wait_for(self, pattern: re.Pattern[str], *, within: float) -> re.Match[str]:
        """Wait for an output line matching ``pattern``; fail after ``within`` seconds."""
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"gateway exited; its output:\n{self.log()}")
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no {pattern.pattern!r} within {within}s; output:\n{self.log()}")

    def terminate(self, within: float) -> int:
        """SIGTERM; return the exit code (fail if not exited within ``within`` seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"gateway still running {within}s after SIGTERM") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
