"""Fixtures for the client tests: a gateway subprocess and unique accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.clients.gateway_process import GatewayProcess


@pytest.fixture(scope="module")
def gateway_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway for a test module (tests use their own accounts to stay apart)."""
    gateway = GatewayProcess(tmp_path_factory.mktemp("gateway-data"))
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def account() -> str:
    """An account no other test uses: the simulated broker opens it on first use."""
    return f"acct-{uuid.uuid4().hex[:12]}"
