"""TLS and mTLS server credentials from PEM files, reloaded when the files change.

Owns reading certificates. gRPC asks ``_fetch`` at each new handshake
(``grpc.dynamic_ssl_server_credentials``); it re-reads the files only when
their modification time, size or inode changed, so a rotated certificate
(cert-manager, a Kubernetes Secret's atomic symlink swap) takes effect for
new connections without a restart, and connections already open keep theirs.
A rotation that leaves the files unreadable keeps the last good certificate.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from gateway.auth.audit import audit

log = logging.getLogger(__name__)


class TlsError(Exception):
    """A certificate or key file is missing or not PEM; a one-line reason."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Where the server's certificate material lives."""

    cert_file: Path
    """PEM certificate chain the server presents (leaf first)."""

    key_file: Path
    """PEM private key of the leaf certificate."""

    client_ca_file: Path | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."""

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None


_Stamp = tuple[tuple[int, int, int], ...]


def _read_pem(path: Path, marker: bytes) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data or marker not in data:
        raise TlsError(f"{path} holds no PEM {marker.decode().strip('- ')}")
    return data


class ReloadingCredentials:
    """Server credentials whose certificate follows the files on disk."""

    def __init__(self, config: TlsConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.reloads = 0
        self._stamp, self._current = self._load()

    def _paths(self) -> list[Path]:
        paths = [self.config.cert_file, self.config.key_file]
        if self.config.client_ca_file is not None:
            paths.append(self.config.client_ca_file)
        return paths

    def _stamp_now(self) -> _Stamp:
        stamps = []
        for path in self._paths():
            try:
                stat = os.stat(path)
            except OSError as exc:
                raise TlsError(f"cannot read {path}: {exc.strerror}") from None
            stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
        return tuple(stamps)

    def _load(self) -> tuple[_Stamp, grpc.ServerCertificateConfiguration]:
        stamp = self._stamp_now()
        cert = _read_pem(self.config.cert_file, b"CERTIFICATE-----")
        key = _read_pem(self.config.key_file, b"PRIVATE KEY-----")
        ca = (
            _read_pem(self.config.client_ca_file, b"CERTIFICATE-----")
            if self.config.client_ca_file is not None
            else None
        )
        return stamp, grpc.ssl_server_certificate_configuration([(key, cert)], ca)

    def server_credentials(self) -> grpc.ServerCredentials:
        # grpc-stubs types the fetcher as never returning None; gRPC documents None
        # as "keep the current configuration".
        fetch: Any = self._fetch
        return grpc.dynamic_ssl_server_credentials(
            self._current, fetch, require_client_authentication=self.config.mutual
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC per handshake: a new configuration, or None to keep the old."""
        with self._lock:
            try:
                stamp = self._stamp_now()
                if stamp == self._stamp:
                    return None
                self._stamp = stamp  # a bad rotation is reported once, not per handshake
                self._stamp, self._current = self._load()
            except TlsError as exc:
                log.error("TLS files changed but cannot be loaded (%s); keeping the old ones", exc)
                audit("tls.reload", outcome="failed", detail=str(exc))
                return None
            except Exception:  # this runs inside gRPC's handshake: never raise there
                log.exception("TLS reload failed; keeping the old certificate")
                return None
            self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.config.cert_file)
        audit("tls.reload", outcome="applied", detail=str(self.config.cert_file))
        return self._current
