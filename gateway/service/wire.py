"""Answers and updates as wire bytes, each order state encoded once.

An order's state (an immutable ``Order``) often goes out more than once: as
the answer to the call that changed it, in the update the fan-out streams to
every subscriber, and to status polls until it changes again. Its protobuf
encoding is kept in a small cache keyed by the object itself, and each
response is assembled around those bytes. That is plain protobuf: a message
field on the wire is its tag, its length and its bytes, and a parser takes
fields in any order, so every client decodes these as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway._proto.execution.v1 import execution_pb2 as pb
from gateway.domain import Order, OrderUpdate
from gateway.service import convert

# Wire tags (field number << 3 | 2, "length-delimited") of the fields built here.
# PlaceOrder/CancelOrder/GetOrderStatus/ReplaceOrder/ListOrders/CancelAllOrders: order(s) = 1
_RESPONSE_ORDER = b"\x0a"
_LIST_TOKEN = b"\x12"  # ListOrdersResponse.next_page_token = 2
_UPDATE_ORDER = b"\x12"  # OrderUpdate.order = 2
_RESPONSE_UPDATE = b"\x0a"  # SubscribeUpdatesResponse.update = 1
# Enough for every order a burst of calls touches; evicted oldest first.
CACHE_SIZE = 4096


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    size = len(payload)
    if size < 0x4000:  # every order and update: a one- or two-byte length
        length = bytes((size,)) if size < 0x80 else bytes(((size & 0x7F) | 0x80, size >> 7))
        return b"".join((tag, length, payload))
    prefix = bytearray(tag)
    while size > 0x7F:
        prefix.append((size & 0x7F) | 0x80)
        size >>= 7
    prefix.append(size)
    return bytes(prefix) + payload


class OrderEncoder:
    """Encodes orders, remembering the last ``capacity`` order states."""

    def __init__(self, capacity: int = CACHE_SIZE) -> None:
        self._capacity = capacity
        # id(order) -> (order, bytes): holding the order keeps its id from
        # being reused by another object while the entry lives.
        self._cache: dict[int, tuple[Order, bytes]] = {}
        self.hits = 0

    def order(self, order: Order) -> bytes:
        """The encoded ``pb.Order`` of ``order``."""
        entry = self._cache.get(id(order))
        if entry is not None and entry[0] is order:
            self.hits += 1
            return entry[1]
        data = convert.order_to_proto(order).SerializeToString()
        cache = self._cache
        if len(cache) >= self._capacity:
            del cache[next(iter(cache))]
        cache[id(order)] = (order, data)
        return data

    def order_response(self, order: Order) -> bytes:
        """A PlaceOrder, CancelOrder, GetOrderStatus or ReplaceOrder response."""
        return _length_delimited(_RESPONSE_ORDER, self.order(order))

    def list_response(self, orders: Sequence[Order], next_page_token: str) -> bytes:
        """A ListOrdersResponse (or, with no token, a CancelAllOrdersResponse: same layout)."""
        parts = [_length_delimited(_RESPONSE_ORDER, self.order(order)) for order in orders]
        if next_page_token:
            parts.append(_length_delimited(_LIST_TOKEN, next_page_token.encode()))
        return b"".join(parts)

    def update_response(self, update: OrderUpdate) -> bytes:
        """A SubscribeUpdatesResponse carrying ``update``."""
        rest = pb.OrderUpdate(
            sequence=update.sequence,
            fill=None if update.fill is None else convert.fill_to_proto(update.fill),
            time=convert.timestamp_to_proto(update.time),
            snapshot=update.snapshot,
            kind=convert.update_kind_to_proto(update.kind),
        ).SerializeToString()
        body = rest + _length_delimited(_UPDATE_ORDER, self.order(update.order))
        return _length_delimited(_RESPONSE_UPDATE, body)
