"""The order table's indexes: lookups, pages in creation order, exec_ids, eviction."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.domain import (
    ListOrdersQuery,
    Order,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    Side,
)
from gateway.domain.enums import TimeInForce
from gateway.engine.order_table import OrderTable
from gateway.engine.retention import page

T0 = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


def make_order(
    created: int, *, account: str = "acct-1", symbol: str = "AAPL", **changes: object
) -> Order:
    spec = OrderSpec(
        account, f"c-{created}", symbol, Side.BUY, OrderType.LIMIT, Decimal(10),
        TimeInForce.DAY, limit_price=Decimal("1.5"),
    )  # fmt: skip
    order = Order(f"o-{created}", spec, OrderStatus.ACCEPTED, T0, T0, created, created)
    return order.evolve(**changes) if changes else order


async def nothing_evicted(order_ids: list[str]) -> dict[str, Order]:
    raise AssertionError(f"no order is evicted here, yet {order_ids} were asked for")


def page_ids(table: OrderTable, query: ListOrdersQuery) -> tuple[list[str], bool]:
    orders, more = asyncio.run(page(table, query, lambda order: order, nothing_evicted))
    return [o.order_id for o in orders], more


def test_pages_follow_creation_order_whatever_the_insertion_order() -> None:
    table = OrderTable()
    for created in (5, 1, 9, 3, 7):
        table.put(make_order(created))
    table.put(make_order(2, account="acct-2"))
    assert page_ids(table, ListOrdersQuery("acct-1", 10)) == (
        ["o-1", "o-3", "o-5", "o-7", "o-9"],
        False,
    )
    assert page_ids(table, ListOrdersQuery("acct-1", 2, after_created_sequence=3)) == (
        ["o-5", "o-7"],
        True,
    )
    assert page_ids(table, ListOrdersQuery("acct-1", 2, after_created_sequence=9)) == ([], False)
    assert page_ids(table, ListOrdersQuery("nobody", 2)) == ([], False)


def test_a_replaced_order_keeps_one_index_entry_and_filters_see_its_new_state() -> None:
    table = OrderTable()
    table.put(make_order(1))
    table.put(make_order(2, symbol="MSFT"))
    table.put(make_order(1, status=OrderStatus.FILLED, broker_order_id="B-1"))
    assert len(table) == 2
    assert page_ids(table, ListOrdersQuery("acct-1", 10)) == (["o-1", "o-2"], False)
    assert page_ids(table, ListOrdersQuery("acct-1", 10, open_only=True)) == (["o-2"], False)
    query = ListOrdersQuery("acct-1", 10, symbols=frozenset({"MSFT"}))
    assert page_ids(table, query) == (["o-2"], False)
    assert [o.order_id for o in table.open_orders()] == ["o-2"]
    found = table.by_broker_id("B-1")
    assert found is not None
    assert found.status is OrderStatus.FILLED


def test_lookups_never_cross_accounts() -> None:
    table = OrderTable()
    table.put(make_order(1))
    table.put(make_order(2, account="acct-2"))
    assert table.by_key("acct-1", "c-1") is table.get("o-1")
    assert table.by_key("acct-2", "c-1") is None
    assert table.find(OrderRef("acct-1", client_order_id="c-1")) is table.get("o-1")
    assert table.find(OrderRef("acct-2", order_id="o-1")) is None
    assert table.find(OrderRef("acct-2", order_id="o-2")) is table.get("o-2")


def test_exec_ids_are_remembered_per_order() -> None:
    table = OrderTable()
    assert not table.has_exec("o-1", "x-1")
    table.add_exec("o-1", "x-1")
    table.add_exec("o-1", "x-2")
    assert table.has_exec("o-1", "x-1")
    assert table.has_exec("o-1", "x-2")
    assert not table.has_exec("o-2", "x-1")


def test_accounts_and_symbols_are_shared_strings() -> None:
    # Built at run time, so they start as distinct objects like decoded input.
    a = make_order(1, account="".join(["acct-", "9"]), symbol="".join(["NV", "DA"]))
    b = make_order(2, account="".join(["acct-", "9"]), symbol="".join(["NV", "DA"]))
    assert a.spec.account is b.spec.account
    assert a.spec.symbol is b.spec.symbol


# ------------------------------------------------------------- eviction


def test_an_evicted_order_keeps_its_index_entries_and_pages_read_it_back() -> None:
    table = OrderTable()
    table.put(make_order(1, status=OrderStatus.FILLED, broker_order_id="B-1"))
    table.put(make_order(2, symbol="MSFT"))
    table.put(make_order(3, status=OrderStatus.CANCELED))
    gone = table.evict("o-1")
    assert table.get("o-1") is None
    assert table.by_key("acct-1", "c-1") is None  # in memory only
    assert table.by_broker_id("B-1") is None
    assert table.evicted_by_key("acct-1", "c-1") == "o-1"
    assert table.evicted_by_broker_id("B-1") == "o-1"
    assert table.evicted_ref(OrderRef("acct-1", order_id="o-1")) == "o-1"
    assert table.evicted_ref(OrderRef("acct-1", order_id="o-3")) is None  # in memory
    assert table.trades("acct-1")
    assert (len(table), table.evicted_count) == (2, 1)
    asked: list[list[str]] = []

    async def read_back(order_ids: list[str]) -> dict[str, Order]:
        asked.append(order_ids)
        return {"o-1": gone}

    def ids(query: ListOrdersQuery) -> tuple[list[str], bool]:
        orders, more = asyncio.run(page(table, query, lambda order: order, read_back))
        return [o.order_id for o in orders], more

    assert ids(ListOrdersQuery("acct-1", 10)) == (["o-1", "o-2", "o-3"], False)
    assert ids(ListOrdersQuery("acct-1", 1)) == (["o-1"], True)
    assert ids(ListOrdersQuery("acct-1", 10, symbols=frozenset({"MSFT"}))) == (["o-2"], False)
    asked.clear()
    assert ids(ListOrdersQuery("acct-1", 10, open_only=True)) == (["o-2"], False)
    assert asked == []  # evicted orders are terminal: an open-only page never reads them

    table.reinstate(gone, ("x-1",))
    assert table.get("o-1") is gone
    assert table.exec_ids("o-1") == ("x-1",)
    assert table.evicted_count == 0
    assert ids(ListOrdersQuery("acct-1", 10)) == (["o-1", "o-2", "o-3"], False)


def test_only_terminal_orders_are_evicted_and_only_evicted_ones_reinstated() -> None:
    table = OrderTable()
    table.put(make_order(1))
    with pytest.raises(ValueError, match="open"):
        table.evict("o-1")
    assert table.get("o-1") is not None
    with pytest.raises(ValueError, match="not evicted"):
        table.reinstate(make_order(1), ())


def test_due_yields_terminal_orders_oldest_first_and_stops_at_the_first_not_due() -> None:
    table = OrderTable()
    for created, minute in ((1, 5), (2, 1), (3, 2), (4, 9)):
        at = T0 + timedelta(minutes=minute)
        table.put(make_order(created, status=OrderStatus.FILLED, updated_at=at))
    table.put(make_order(5))  # open: never due
    cutoff = T0 + timedelta(minutes=6)
    # Queued as they turned terminal: o-1 (minute 5), o-2, o-3, o-4 (minute 9).
    assert [o.order_id for o in table.due(cutoff, 10, lambda _: False)] == ["o-1", "o-2", "o-3"]
    assert list(table.due(cutoff, 10, lambda _: False)) == []  # o-4 heads the queue, not due
    late = T0 + timedelta(hours=1)
    kept = list(table.due(late, 10, lambda order_id: order_id == "o-4"))
    assert kept == []  # kept (in flight): queued again, not yielded
    assert [o.order_id for o in table.due(late, 1, lambda _: False)] == ["o-4"]


def test_a_restored_index_finds_evicted_orders_as_before() -> None:
    table = OrderTable()
    for created in (1, 2, 3, 4):
        status = OrderStatus.ACCEPTED if created == 3 else OrderStatus.FILLED
        table.put(make_order(created, status=status, broker_order_id=f"B-{created}"))
    table.put(make_order(5, account="acct-2", status=OrderStatus.CANCELED))
    for order_id in ("o-1", "o-2", "o-5"):
        table.evict(order_id)
    orders, exec_ids, accounts = table.snapshot()
    restored = OrderTable()
    restored.restore(orders, exec_ids, list(accounts))
    assert restored.evicted_count == 3
    assert restored.evicted_by_key("acct-1", "c-2") == "o-2"
    assert restored.evicted_by_broker_id("B-1") == "o-1"
    assert restored.evicted_by_key("acct-2", "c-5") == "o-5"
    assert restored.by_key("acct-1", "c-3") == table.by_key("acct-1", "c-3")
    assert [o.order_id for o in restored.open_orders()] == ["o-3"]
    scanned = [(s, i, o is None) for s, i, o in restored.scan("acct-1", 0, 10)]
    assert scanned == [(1, "o-1", True), (2, "o-2", True), (3, "o-3", False), (4, "o-4", False)]
