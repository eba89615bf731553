"""Contract tests: the real ``AlpacaBroker`` against the paper venue on port 0, in process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.brokers.alpaca import (
    ALLOW_LIVE_ENV,
    LIVE_URL,
    AlpacaBroker,
    AlpacaConfig,
    LiveTradingRefused,
)
from gateway.brokers.base import Broker, ExecutionReport, ReportKind
from gateway.brokers.errors import (
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
)
from gateway.brokers.simulated import SimConfig
from gateway.brokers.testing import each_report
from gateway.domain import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from paper_venue import Faults, VenueAccount, VenueConfig, VenueServer
from tests.support import eventually

KEY_ID = "PKVENUETEST00001"
SECRET = "venue-test-secret"
VENUE_ACCOUNT = "PA0000000001"
ACCOUNT = "alpaca"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alpaca"


def config(url: str, **changes: Any) -> AlpacaConfig:
    settings: dict[str, Any] = {
        "key_id": KEY_ID,
        "secret_key": SECRET,
        "base_url": url,
        "request_timeout": 5.0,
        "reconnect_backoff": 0.02,
        "reconnect_backoff_max": 0.2,
    }
    settings.update(changes)
    return AlpacaConfig(**settings)


def market(client_order_id: str, quantity: str = "10", **changes: Any) -> OrderSpec:
    fields: dict[str, Any] = {
        "account": ACCOUNT,
        "client_order_id": client_order_id,
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": Decimal(quantity),
        "time_in_force": TimeInForce.DAY,
    }
    fields.update(changes)
    return OrderSpec(**fields)


def resting(client_order_id: str, limit: str = "0.01") -> OrderSpec:
    """A buy far below the venue's price (~100): it rests until the price comes down."""
    return market(
        client_order_id,
        order_type=OrderType.LIMIT,
        limit_price=Decimal(limit),
        time_in_force=TimeInForce.GTC,
    )


class Collected:
    """Every report the broker streams, gathered by a background reader."""

    def __init__(self, broker: AlpacaBroker) -> None:
        self.reports: list[ExecutionReport] = []
        self._task = asyncio.create_task(self._read(broker))

    async def _read(self, broker: AlpacaBroker) -> None:
        async for report in each_report(broker.reports()):
            self.reports.append(report)

    def of(self, client_order_id: str, kind: ReportKind | None = None) -> list[ExecutionReport]:
        return [
            r
            for r in self.reports
            if r.client_order_id == client_order_id and (kind is None or r.kind is kind)
        ]

    def filled(self, client_order_id: str) -> Decimal:
        return sum(
            (r.fill.quantity for r in self.of(client_order_id, ReportKind.FILL) if r.fill),
            Decimal(0),
        )

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def venue() -> AsyncIterator[VenueServer]:
    server = VenueServer(
        VenueConfig(
            accounts=(
                VenueAccount(KEY_ID, SECRET, name=VENUE_ACCOUNT),
                VenueAccount("PKOTHER", "other-secret", name="PA0000000002"),
            ),
            sim=SimConfig(seed=3, tick_interval=0.01, order_id_prefix="VENUE"),
        )
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def broker(venue: VenueServer) -> AsyncIterator[AlpacaBroker]:
    adapter = AlpacaBroker(config(venue.url))
    await adapter.connect()
    try:
        yield adapter
    finally:
        await adapter.close()


@pytest.fixture
async def collected(broker: AlpacaBroker) -> AsyncIterator[Collected]:
    gathered = Collected(broker)
    try:
        yield gathered
    finally:
        await gathered.stop()


async def admin(venue: VenueServer, method: str, path: str, body: object = None) -> Any:
    headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, venue.url + path, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


def venue_orders(venue: VenueServer) -> list[dict[str, Any]]:
    return venue.state.venue.list(VENUE_ACCOUNT, status="all", limit=500)


# ------------------------------------------------------------------ orders


async def test_the_adapter_is_a_broker(broker: AlpacaBroker) -> None:
    assert isinstance(broker, Broker)


async def test_a_market_order_is_acked_then_filled_through_the_stream(
    broker: AlpacaBroker, collected: Collected
) -> None:
    ack = await broker.submit(market("mkt-1"))

    await eventually(
        lambda: collected.filled("mkt-1"),
        lambda filled: filled == Decimal(10),
        what="fills adding up to the order",
    )
    reports = collected.of("mkt-1")
    assert reports[0].kind is ReportKind.ACCEPTED
    assert {r.broker_order_id for r in reports} == {ack.broker_order_id}
    exec_ids = [r.fill.exec_id for r in reports if r.fill]
    assert len(exec_ids) == len(set(exec_ids)) > 1, "partial fills, each named once"
    assert all(r.account == ACCOUNT for r in reports)

    state = await broker.order_status(ACCOUNT, "mkt-1")
    assert state is not None
    assert state.status is OrderStatus.FILLED
    assert state.filled_quantity == Decimal(10)
    assert state.broker_order_id == ack.broker_order_id


async def test_a_resting_limit_order_is_open_until_cancelled(
    broker: AlpacaBroker, collected: Collected
) -> None:
    ack = await broker.submit(resting("rest-1"))
    await eventually(lambda: collected.of("rest-1", ReportKind.ACCEPTED), bool, what="acceptance")
    open_ = await broker.open_orders(ACCOUNT)
    assert [(s.client_order_id, s.status) for s in open_] == [("rest-1", OrderStatus.ACCEPTED)]

    # Without a broker order id the adapter finds the order by client_order_id.
    await broker.cancel(ACCOUNT, "rest-1", "")
    canceled = await eventually(
        lambda: collected.of("rest-1", ReportKind.CANCELED), bool, what="canceled event"
    )
    assert canceled[0].broker_order_id == ack.broker_order_id
    assert await broker.open_orders() == []
    state = await broker.order_status(ACCOUNT, "rest-1")
    assert state is not None
    assert state.status is OrderStatus.CANCELED

    with pytest.raises(BrokerRejected, match="not cancelable"):
        await broker.cancel(ACCOUNT, "rest-1", ack.broker_order_id)


async def test_a_duplicate_submit_returns_the_existing_order(
    broker: AlpacaBroker, venue: VenueServer
) -> None:
    first = await broker.submit(resting("dup-1"))
    second = await broker.submit(resting("dup-1"))
    assert second == first
    assert len(venue_orders(venue)) == 1

    with pytest.raises(BrokerRejected, match="different order"):
        await broker.submit(resting("dup-1", limit="0.02"))
    assert len(venue_orders(venue)) == 1


async def test_lookups_by_client_order_id(broker: AlpacaBroker) -> None:
    ack = await broker.submit(resting("look-1"))
    state = await broker.order_status(ACCOUNT, "look-1")
    assert state is not None
    assert (state.broker_order_id, state.status) == (ack.broker_order_id, OrderStatus.ACCEPTED)
    assert await broker.order_status(ACCOUNT, "never-sent") is None
    assert await broker.order_status("someone-else", "look-1") is None
    assert await broker.open_orders("someone-else") == []


async def test_orders_of_another_gateway_account_are_refused(
    broker: AlpacaBroker, venue: VenueServer
) -> None:
    with pytest.raises(BrokerRejected, match="not traded here"):
        await broker.submit(market("acct-1", account="acct-other"))
    assert venue_orders(venue) == []


async def test_an_order_the_venue_refuses_is_rejected(broker: AlpacaBroker) -> None:
    # A market order cannot rest overnight: the venue answers 422.
    with pytest.raises(BrokerRejected, match="422"):
        await broker.submit(market("gtc-market", time_in_force=TimeInForce.GTC))


# -------------------------------------------------------- auth and faults


async def test_bad_credentials_fail_connect_clearly(venue: VenueServer) -> None:
    adapter = AlpacaBroker(config(venue.url, secret_key="wrong"))
    with pytest.raises(BrokerRejected, match="APCA_API_KEY_ID"):
        await adapter.connect()
    await adapter.close()


async def test_the_stream_refuses_bad_credentials(venue: VenueServer) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(venue.url + "/stream") as ws:
        await ws.send_json({"action": "auth", "key": KEY_ID, "secret": "wrong"})
        reply = await ws.receive(timeout=5)
        assert reply.type is aiohttp.WSMsgType.BINARY, "Alpaca's paper stream sends binary"
        assert json.loads(reply.data) == _fixture("stream_control.json")["unauthorized"]
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_an_unreachable_venue_is_unavailable() -> None:
    server = VenueServer(VenueConfig(accounts=(VenueAccount(KEY_ID, SECRET),)))
    url = await server.start()
    await server.stop()
    adapter = AlpacaBroker(config(url, connect_timeout=2.0))
    with pytest.raises(BrokerUnavailable):
        await adapter.connect()
    await adapter.close()


async def test_429_carries_the_wait_and_a_lost_answer_is_found_again(
    broker: AlpacaBroker, venue: VenueServer
) -> None:
    venue.state.set_faults(rate_limit_rate=1.0)
    with pytest.raises(BrokerRateLimited) as throttled:
        await broker.submit(market("storm-1"))
    assert throttled.value.retry_after is not None
    assert 0 <= throttled.value.retry_after <= 2
    assert venue_orders(venue) == []

    # The venue places the order, then answers 500: the outcome is unknown...
    venue.state.set_faults(rate_limit_rate=0.0, lost_answer_rate=1.0)
    with pytest.raises(BrokerTimeout):
        await broker.submit(market("storm-1"))
    # ...and the retry finds the order instead of placing a second one.
    venue.state.set_faults(lost_answer_rate=0.0)
    ack = await broker.submit(market("storm-1"))
    orders = venue_orders(venue)
    assert [o["id"] for o in orders] == [ack.broker_order_id]


async def test_the_adapter_waits_out_the_venues_window_instead_of_drawing_429s() -> None:
    account = VenueAccount(KEY_ID, SECRET, name=VENUE_ACCOUNT)
    server = VenueServer(VenueConfig(accounts=(account,), calls_per_minute=3))
    url = await server.start()
    adapter = AlpacaBroker(config(url))
    try:
        await adapter.connect()
        # X-RateLimit-Remaining reaches 0 within the window (a minute boundary
        # may start a new one once): from then on calls wait for the reset.
        waited = False
        for _ in range(8):
            try:
                async with asyncio.timeout(0.5):
                    await adapter.order_status(ACCOUNT, "x")
            except TimeoutError:
                waited = True
                break
        assert waited, "the adapter kept calling past the venue's limit"
        assert adapter.limiter.waits >= 1
        assert adapter.limiter.limit == 3  # learnt from X-RateLimit-Limit
    finally:
        await adapter.close()
        await server.stop()


# ------------------------------------------------------------------ stream


async def test_the_stream_reconnects_and_reports_continue(venue: VenueServer) -> None:
    reconnected: list[int] = []
    adapter = AlpacaBroker(config(venue.url), on_reconnect=lambda: reconnected.append(1))
    await adapter.connect()
    collected = Collected(adapter)
    try:
        await adapter.submit(resting("gap-1", limit="50"))
        await eventually(
            lambda: collected.of("gap-1", ReportKind.ACCEPTED), bool, what="acceptance"
        )

        dropped = await admin(venue, "POST", "/_venue/streams/drop")
        assert dropped == {"dropped": 1}
        await eventually(lambda: adapter.reconnects, lambda n: n == 1, what="a reconnect")
        assert reconnected == [1]
        assert adapter.stream_connected

        # The price falls through the limit after the reconnect: the fills arrive.
        await admin(venue, "POST", "/_venue/prices", {"symbol": "AAPL", "price": "40"})
        await eventually(
            lambda: collected.filled("gap-1"),
            lambda filled: filled == Decimal(10),
            what="fills after the reconnect",
        )
    finally:
        await collected.stop()
        await adapter.close()


async def test_close_ends_every_report_iterator(broker: AlpacaBroker) -> None:
    reader = asyncio.create_task(_drain(broker))
    await asyncio.sleep(0)  # let the reader start waiting
    await broker.close()
    assert await asyncio.wait_for(reader, 5) == []


# ---------------------------------------------------------------- fidelity


async def test_the_venue_speaks_alpacas_order_and_event_shapes(venue: VenueServer) -> None:
    headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
    recorded_order = _fixture("order_new.json")
    recorded_fill = next(m for m in _fixture("trade_updates.json") if m["data"]["event"] == "fill")
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.ws_connect(venue.url + "/stream") as ws,
    ):
        await ws.send_json(_fixture("stream_control.json")["auth_request"] | _keys())
        assert json.loads((await ws.receive(timeout=5)).data)["data"]["status"] == "authorized"
        await ws.send_json(_fixture("stream_control.json")["listen_request"])
        listening = json.loads((await ws.receive(timeout=5)).data)
        assert listening == _fixture("stream_control.json")["listening"]

        body = {"symbol": "AAPL", "qty": "3", "side": "buy", "type": "market"}
        body |= {"time_in_force": "day", "client_order_id": "shape-1"}
        async with session.post(venue.url + "/v2/orders", json=body) as response:
            assert response.status == 200
            order = await response.json()
        assert set(order) == set(recorded_order)
        for field in ("qty", "filled_qty"):
            assert isinstance(order[field], str)

        while True:
            message = json.loads((await ws.receive(timeout=5)).data)
            if message["data"]["event"] == "fill":
                break
        assert set(message["data"]) == set(recorded_fill["data"])
        assert set(message["data"]["order"]) == set(recorded_order)
        for field in ("price", "qty", "position_qty"):
            assert isinstance(message["data"][field], str)

        async with session.post(venue.url + "/v2/orders", json=body) as response:
            assert response.status == 422
            error = await response.json()
        assert error == _fixture("errors.json")["duplicate_client_order_id"]["body"]

        async with session.delete(venue.url + f"/v2/orders/{order['id']}") as response:
            assert response.status == 422
            assert await response.json() == _fixture("errors.json")["not_cancelable"]["body"]


# ---------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("allow_live", "environ"),
    [
        (False, {}),
        (True, {}),
        (False, {ALLOW_LIVE_ENV: "yes"}),
        (True, {ALLOW_LIVE_ENV: "no"}),
    ],
)
def test_live_trading_needs_both_opt_ins(allow_live: bool, environ: dict[str, str]) -> None:
    live = config(LIVE_URL, allow_live=allow_live)
    with pytest.raises(LiveTradingRefused, match="LIVE"):
        AlpacaBroker(live, environ=environ)


def test_live_trading_with_both_opt_ins_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    live = config(LIVE_URL, allow_live=True)
    with caplog.at_level(logging.WARNING):
        AlpacaBroker(live, environ={ALLOW_LIVE_ENV: "yes"})
    assert any("LIVE TRADING ENABLED" in r.getMessage() for r in caplog.records)


def test_paper_and_local_venues_need_no_opt_in() -> None:
    assert not AlpacaConfig(key_id="k", secret_key="s").is_live
    assert not config("http://127.0.0.1:8700").is_live
    assert config("https://api.alpaca.markets/").is_live
    # A paper REST URL with a live stream is still live.
    assert config(
        "https://paper-api.alpaca.markets", stream_url="wss://api.alpaca.markets/stream"
    ).is_live


def test_credentials_come_from_env_or_file_and_never_show(tmp_path: Path) -> None:
    env = {"APCA_API_KEY_ID": "PKENV", "APCA_API_SECRET_KEY": "env-secret"}
    from_env = AlpacaConfig.from_env(env)
    assert (from_env.key_id, from_env.secret_key) == ("PKENV", "env-secret")
    assert "env-secret" not in repr(from_env)
    assert "PKENV" not in repr(from_env)

    path = tmp_path / "alpaca.env"
    path.write_text("# paper keys\nAPCA_API_SECRET_KEY='file-secret'\n")
    from_file = AlpacaConfig.from_env(env, credentials_file=path, account="main")
    assert (from_file.key_id, from_file.secret_key) == ("PKENV", "file-secret")
    assert from_file.account == "main"

    with pytest.raises(ValueError, match="APCA_API_KEY_ID"):
        AlpacaConfig.from_env({})


# ------------------------------------------------------------------ helpers


async def _drain(broker: AlpacaBroker) -> list[ExecutionReport]:
    return [report async for report in each_report(broker.reports())]


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _keys() -> dict[str, str]:
    return {"key": KEY_ID, "secret": SECRET}


def test_faults_validate() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=2.0)


# ------------------------------------------------------------ a trading day


async def test_the_venue_sends_a_trading_days_events_and_the_adapter_maps_them() -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).time()
    server = VenueServer(
        VenueConfig(
            accounts=(VenueAccount(KEY_ID, SECRET, name=VENUE_ACCOUNT),),
            sim=SimConfig(seed=3, tick_interval=0.02, session_end=soon, order_id_prefix="VENUE"),
        )
    )
    sent: list[tuple[str, str]] = []
    server.state.venue.subscribe(
        lambda _, m: sent.append((m["data"]["order"]["client_order_id"], m["data"]["event"]))
    )
    await server.start()
    adapter = AlpacaBroker(config(server.url))
    await adapter.connect()
    gathered = Collected(adapter)
    try:
        await adapter.submit(resting("day-cancel"))
        await adapter.submit(market("day-expire", order_type=OrderType.LIMIT,
                                    limit_price=Decimal("0.01")))  # fmt: skip
        await adapter.submit(resting("gtc-rests"))
        server.state.set_faults(late_reject_rate=1.0)
        late = await adapter.submit(resting("late-reject"))
        server.state.set_faults(late_reject_rate=0.0)
        await adapter.cancel(ACCOUNT, "day-cancel", "")
        await eventually(
            lambda: gathered.of("day-expire", ReportKind.EXPIRED),
            bool,
            what="the DAY order expired at the session's end",
        )
        await eventually(
            lambda: [e for c, e in sent if c == "gtc-rests"],
            lambda events: "done_for_day" in events,
            what="the GTC order's day closed",
        )
        # Received (the submit was answered), then refused by the venue's checks.
        assert late.broker_order_id
        assert [e for c, e in sent if c == "late-reject"] == ["pending_new", "rejected"]
        assert [r.kind for r in gathered.of("late-reject")] == [ReportKind.REJECTED]
        rejected = await adapter.order_status(ACCOUNT, "late-reject")
        assert rejected is not None
        assert rejected.status is OrderStatus.REJECTED
        # done_for_day changes nothing for the order: not reported, still open.
        assert [e for c, e in sent if c == "gtc-rests"] == ["pending_new", "new", "done_for_day"]
        assert [r.kind for r in gathered.of("gtc-rests")] == [ReportKind.ACCEPTED]
        resting_state = await adapter.order_status(ACCOUNT, "gtc-rests")
        assert resting_state is not None
        assert resting_state.status is OrderStatus.ACCEPTED
        assert [e for c, e in sent if c == "day-cancel"] == [
            "pending_new", "new", "pending_cancel", "canceled",
        ]  # fmt: skip
        assert [e for c, e in sent if c == "day-expire"] == ["pending_new", "new", "expired"]
        # pending_new and pending_cancel tell the gateway nothing new: not reported.
        assert [r.kind for r in gathered.of("day-cancel")] == [
            ReportKind.ACCEPTED, ReportKind.CANCELED,
        ]  # fmt: skip
    finally:
        await gathered.stop()
        await adapter.close()
        await server.stop()
