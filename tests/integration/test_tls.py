"""TLS and mTLS with certificates made here, and a certificate rotated without a restart."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway, StartupError
from gateway.brokers.simulated import SimConfig, SimulatedBroker
from gateway.journal import MemoryJournal
from gateway.security import TlsConfig
from tests.conftest import gateway_test_config
from tests.ops_support import Identity, make_ca, make_cert
from tests.support import eventually, resting_buy


@dataclasses.dataclass
class Pki:
    directory: Path
    ca: Identity
    server_cert: Path
    server_key: Path
    ca_file: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = make_ca()
    cert, key = make_cert(ca, "gateway", server=True).write(tmp_path, "server")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert)
    return Pki(tmp_path, ca, cert, key, ca_file)


async def start(tmp_path: Path, tls: TlsConfig) -> Gateway:
    config = dataclasses.replace(gateway_test_config(tmp_path), tls=tls)
    gw = Gateway(
        config,
        broker=SimulatedBroker(SimConfig(seed=7, tick_interval=0.01)),
        journal=MemoryJournal(),
    )
    await gw.start()
    return gw


@pytest.fixture
async def tls_gateway(pki: Pki) -> AsyncIterator[Gateway]:
    gw = await start(pki.directory, TlsConfig(pki.server_cert, pki.server_key))
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


@pytest.fixture
async def mtls_gateway(pki: Pki) -> AsyncIterator[Gateway]:
    gw = await start(pki.directory, TlsConfig(pki.server_cert, pki.server_key, pki.ca_file))
    try:
        yield gw
    finally:
        await gw.stop(grace=0.5)


async def check(
    address: str, credentials: grpc.ChannelCredentials | None, *, within: float = 3
) -> grpc.StatusCode:
    """Place an order over a channel with ``credentials`` (None: plaintext)."""
    if credentials is None:
        channel = grpc.aio.insecure_channel(address)
    else:
        channel = grpc.aio.secure_channel(address, credentials)
    async with channel:
        try:
            await pb_grpc.ExecutionServiceStub(channel).PlaceOrder(
                resting_buy(f"tls-{os.urandom(4).hex()}"), timeout=within
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_tls_serves_clients_that_trust_the_ca_and_not_plaintext(
    tls_gateway: Gateway, pki: Pki
) -> None:
    trusting = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    assert await check(tls_gateway.address, trusting) == grpc.StatusCode.OK
    assert await check(tls_gateway.address, None) == grpc.StatusCode.UNAVAILABLE
    stranger = grpc.ssl_channel_credentials(root_certificates=make_ca("other").cert)
    assert await check(tls_gateway.address, stranger) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate_from_the_client_ca(
    mtls_gateway: Gateway, pki: Pki
) -> None:
    client = make_cert(pki.ca, "strategy-1", server=False)
    with_cert = grpc.ssl_channel_credentials(pki.ca.cert, client.key, client.cert)
    assert await check(mtls_gateway.address, with_cert) == grpc.StatusCode.OK
    without = grpc.ssl_channel_credentials(pki.ca.cert)
    assert await check(mtls_gateway.address, without) == grpc.StatusCode.UNAVAILABLE
    foreign = make_cert(make_ca("rogue"), "strategy-2", server=False)
    forged = grpc.ssl_channel_credentials(pki.ca.cert, foreign.key, foreign.cert)
    assert await check(mtls_gateway.address, forged) == grpc.StatusCode.UNAVAILABLE


async def test_a_rotated_certificate_is_served_to_new_connections_without_restart(
    tls_gateway: Gateway, pki: Pki
) -> None:
    new_ca = make_ca("next-ca")
    trusts_new = grpc.ssl_channel_credentials(root_certificates=new_ca.cert)
    trusts_old = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    assert await check(tls_gateway.address, trusts_new) == grpc.StatusCode.UNAVAILABLE
    # Rotate the way a Kubernetes Secret does: new files moved into place.
    rotated = make_cert(new_ca, "gateway", server=True)
    staged_cert, staged_key = rotated.write(pki.directory, "staged")
    os.replace(staged_key, pki.server_key)
    os.replace(staged_cert, pki.server_cert)
    await eventually(
        lambda: check(tls_gateway.address, trusts_new),
        lambda code: code == grpc.StatusCode.OK,
        what="the new certificate served",
    )
    assert await check(tls_gateway.address, trusts_old) == grpc.StatusCode.UNAVAILABLE


async def test_a_broken_rotation_keeps_the_last_good_certificate(
    tls_gateway: Gateway, pki: Pki
) -> None:
    trusting = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    pki.server_cert.write_text("not a certificate\n")
    for _ in range(3):
        assert await check(tls_gateway.address, trusting) == grpc.StatusCode.OK


async def test_health_over_tls(tls_gateway: Gateway, pki: Pki) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca.cert)
    async with grpc.aio.secure_channel(tls_gateway.address, credentials) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="execution.v1.ExecutionService"), timeout=5
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        listed = await pb_grpc.ExecutionServiceStub(channel).ListOrders(
            pb.ListOrdersRequest(account="acct-1"), timeout=5
        )
        assert listed is not None


async def test_unreadable_certificate_files_stop_the_start(pki: Pki) -> None:
    missing = pki.directory / "missing.crt"
    with pytest.raises(StartupError, match=r"missing\.crt"):
        await start(pki.directory, TlsConfig(missing, pki.server_key))
