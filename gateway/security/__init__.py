"""Transport security: TLS and mTLS credentials from files (``tls``)."""

from gateway.security.tls import ReloadingCredentials, TlsConfig, TlsError

__all__ = ["ReloadingCredentials", "TlsConfig", "TlsError"]
