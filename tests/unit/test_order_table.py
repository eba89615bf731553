"""The order table's indexes: lookups, pages in creation order, exec_ids."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

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


def page_ids(table: OrderTable, query: ListOrdersQuery) -> tuple[list[str], bool]:
    orders, more = table.page(query)
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
