"""Principals through the public API: mTLS identities, per-principal limits, the audit log."""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway._proto.execution.v1 import execution_pb2_grpc as pb_grpc
from gateway.app import Gateway
from gateway.auth import TokenStore, hash_token, parse_table
from gateway.auth.limits import PrincipalLimits
from gateway.brokers.testing import RecordingBroker
from gateway.journal import MemoryJournal
from gateway.security import TlsConfig
from tests.conftest import gateway_test_config
from tests.ops_support import TOKENS, Identity, bearer, make_ca, make_cert, token_table
from tests.support import STREAM_END, error_metadata, error_reason, eventually, resting_buy

OK = grpc.StatusCode.OK


def client_cert(
    ca: Identity, common_name: str, sans: list[x509.GeneralName]
) -> tuple[bytes, bytes]:
    """A client certificate (PEM cert, PEM key) signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.private_key, hashes.SHA256())
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return OK


async def failure(call: Any) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call succeeded")


# ------------------------------------------------------------------ mTLS identities

ALPHA_URI = "spiffe://cluster.local/ns/trading/sa/alpha"
MTLS_TABLE = f"""
alpha  x509:uri={ALPHA_URI}          acct-a  rw
viewer x509:cn=risk%20viewer         *       ro
ops    {hash_token(TOKENS["ops"])}   *       rw
"""


@dataclasses.dataclass
class Mtls:
    gateway: Gateway
    ca: Identity

    def channel(self, cert: tuple[bytes, bytes]) -> grpc.aio.Channel:
        credentials = grpc.ssl_channel_credentials(self.ca.cert, cert[1], cert[0])
        return grpc.aio.secure_channel(f"localhost:{self.gateway.port}", credentials)


@pytest.fixture
async def mtls(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Mtls]:
    ca = make_ca()
    cert, key = make_cert(ca, "gateway", server=True).write(tmp_path, "server")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert)
    config = dataclasses.replace(
        gateway_test_config(tmp_path),
        tls=TlsConfig(cert, key, ca_file),
        tokens=TokenStore(parse_table(MTLS_TABLE, source="test")),
    )
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        yield Mtls(gw, ca)
    finally:
        await gw.stop(grace=0.5)


async def test_a_client_certificate_san_is_a_principal_without_any_token(mtls: Mtls) -> None:
    alpha = client_cert(mtls.ca, "alpha-pod", [x509.UniformResourceIdentifier(ALPHA_URI)])
    async with mtls.channel(alpha) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        placed = await stub.PlaceOrder(resting_buy("m-1", account="acct-a"), timeout=5)
        assert placed.order.account == "acct-a"
        error = await failure(stub.PlaceOrder(resting_buy("m-2", account="acct-b"), timeout=5))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_metadata(error) == {"principal": "alpha", "account": "acct-b"}
        stream = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(), timeout=5)
        assert (await stream.read()) is not STREAM_END
        assert mtls.gateway.streams.count("alpha") == 1
        stream.cancel()


async def test_a_subject_common_name_is_a_principal_with_its_mode(mtls: Mtls) -> None:
    viewer = client_cert(mtls.ca, "risk viewer", [])
    async with mtls.channel(viewer) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        listed = await stub.ListOrders(pb.ListOrdersRequest(account="acct-b"), timeout=5)
        assert not listed.orders
        error = await failure(stub.PlaceOrder(resting_buy("v-1", account="acct-b"), timeout=5))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_reason(error) == "READ_ONLY_PRINCIPAL"


async def test_an_unmapped_certificate_needs_a_token_and_a_token_decides(mtls: Mtls) -> None:
    stranger = client_cert(mtls.ca, "stranger", [x509.DNSName("stranger.example")])
    alpha = client_cert(mtls.ca, "alpha-pod", [x509.UniformResourceIdentifier(ALPHA_URI)])
    async with mtls.channel(stranger) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        error = await failure(stub.ListOrders(pb.ListOrdersRequest(account="acct-a"), timeout=5))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(error) == "UNKNOWN_CERTIFICATE"
        request = pb.ListOrdersRequest(account="acct-b")
        assert await code_of(stub.ListOrders(request, metadata=bearer("ops"), timeout=5)) is OK
    async with mtls.channel(alpha) as channel:
        stub = pb_grpc.ExecutionServiceStub(channel)
        # A token, when sent, decides: ops may see acct-b, the certificate's alpha may not.
        request = pb.ListOrdersRequest(account="acct-b")
        assert await code_of(stub.ListOrders(request, metadata=bearer("ops"), timeout=5)) is OK
        forged = (("authorization", "Bearer forged-token-0123456789abcdef"),)
        error = await failure(stub.ListOrders(request, metadata=forged, timeout=5))
        assert error_reason(error) == "INVALID_TOKEN"


# ------------------------------------------------------------------ per-principal limits


@pytest.fixture
async def limited(tmp_path: Path, broker: RecordingBroker) -> AsyncIterator[Any]:
    config = dataclasses.replace(
        gateway_test_config(tmp_path),
        tokens=TokenStore(parse_table(token_table(), source="test")),
        # A rate so slow that no token comes back during the test: the burst is all.
        limits=PrincipalLimits(max_streams=2, order_rate=0.001, order_burst=3),
    )
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            yield gw, pb_grpc.ExecutionServiceStub(channel)
    finally:
        await gw.stop(grace=0.5)


async def open_stream(stub: Any, caller: str) -> Any:
    call = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(), metadata=bearer(caller), timeout=10)
    message = await call.read()
    assert message is not STREAM_END
    return call


async def test_a_principal_over_its_open_streams_is_refused_and_others_are_not(
    limited: Any,
) -> None:
    gateway, stub = limited
    first, _second = await open_stream(stub, "alice"), await open_stream(stub, "alice")
    third = stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(), metadata=bearer("alice"))
    error = await failure(third.read())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(error) == "PRINCIPAL_STREAM_LIMIT"
    assert error_metadata(error) == {"principal": "alice", "limit": "2"}
    assert gateway.actor.subscriber_count == 2  # the refused one never subscribed
    bob = await open_stream(stub, "bob")  # another principal is not affected
    first.cancel()
    await eventually(
        lambda: gateway.streams.count("alice"),
        lambda n: n == 1,
        what="alice's cancelled stream released",
    )
    (await open_stream(stub, "alice")).cancel()
    bob.cancel()


async def test_a_principal_over_its_order_rate_is_refused_and_nothing_is_placed(
    limited: Any,
) -> None:
    gateway, stub = limited
    for n in range(3):
        await stub.PlaceOrder(resting_buy(f"r-{n}", account="acct-a"), metadata=bearer("alice"))
    refused = resting_buy("r-3", account="acct-a")
    error = await failure(stub.PlaceOrder(refused, metadata=bearer("alice"), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(error) == "PRINCIPAL_RATE_LIMITED"
    details = error_metadata(error)
    assert details["principal"] == "alice"
    assert details["burst"] == "3"
    assert int(details["retry_after_ms"]) > 0
    cancel = pb.CancelOrderRequest(account="acct-a", client_order_id="r-0")
    assert await code_of(stub.CancelOrder(cancel, metadata=bearer("alice"))) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    # Reads are not order entry; other principals have their own budget.
    lookup = pb.GetOrderStatusRequest(account="acct-a", client_order_id="r-3")
    assert await code_of(stub.GetOrderStatus(lookup, metadata=bearer("alice"))) is (
        grpc.StatusCode.NOT_FOUND
    )
    placed = await stub.PlaceOrder(resting_buy("b-0", account="acct-b"), metadata=bearer("bob"))
    assert placed.order.account == "acct-b"
    assert gateway.actor.order_count == 4


# ----------------------------------------------------------------------- the audit log


async def test_refusals_and_reloads_are_audited_without_secrets(
    tmp_path: Path, broker: RecordingBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(token_table())
    config = dataclasses.replace(
        gateway_test_config(tmp_path),
        tokens=TokenStore.load(tokens_file),
        auth_reload_interval=0.05,
        limits=PrincipalLimits(max_streams=1),
    )
    gw = Gateway(config, broker=broker, journal=MemoryJournal())
    await gw.start()
    try:
        async with grpc.aio.insecure_channel(gw.address) as channel:
            stub = pb_grpc.ExecutionServiceStub(channel)
            forged = (("authorization", "Bearer forged-token-0123456789abcdef"),)
            await code_of(stub.ListOrders(pb.ListOrdersRequest(account="acct-a"), metadata=forged))
            await code_of(
                stub.PlaceOrder(
                    resting_buy("x", account="acct-b\nforged line"), metadata=bearer("alice")
                )
            )
            await code_of(
                stub.PlaceOrder(resting_buy("y", account="acct-b"), metadata=bearer("alice"))
            )
            held = await open_stream(stub, "bob")
            await code_of(
                stub.SubscribeUpdates(pb.SubscribeUpdatesRequest(), metadata=bearer("bob")).read()
            )
            kept = [line for line in token_table().splitlines() if not line.startswith("bob ")]
            tokens_file.write_text("\n".join(kept))
            await eventually(
                lambda: [r for r in caplog.records if _event(r) == "stream.ended"],
                bool,
                what="bob's stream ended by the reload",
            )
            held.cancel()
    finally:
        await gw.stop(grace=0.5)
    lines = {(_event(r), r.__dict__.get("audit_reason")): r for r in caplog.records if _event(r)}
    assert ("authentication", "INVALID_TOKEN") in lines
    denied = lines[("authorization", "ACCOUNT_NOT_GRANTED")].getMessage()
    assert "principal=alice" in denied
    assert "account=acct-b" in denied
    assert "rpc=/execution.v1.ExecutionService/PlaceOrder" in denied
    assert "peer=" in denied
    assert ("limit", "PRINCIPAL_STREAM_LIMIT") in lines
    assert ("stream.ended", "CREDENTIAL_REVOKED") in lines
    reload = lines[("principals.reload", None)].getMessage()
    assert "added=- removed=bob changed=-" in reload
    # One line each: a crafted account name cannot start a line of its own.
    assert all("\n" not in r.getMessage() for r in caplog.records)
    text = caplog.text
    for token in (*TOKENS.values(), "forged-token-0123456789abcdef"):
        assert token not in text
        assert hash_token(token) not in text


def _event(record: logging.LogRecord) -> str | None:
    event = record.__dict__.get("audit_event")
    return event if isinstance(event, str) else None
