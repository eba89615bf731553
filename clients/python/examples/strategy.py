"""An asyncio strategy: the same steps as the Go, TypeScript, Java and Rust examples.

Subscribe, rest a limit order and amend it (ReplaceOrder: a new quantity and
price), fill a market order, follow the stream until the market order is FILLED
and the amend is confirmed (an update of kind REPLACED), cancel the limit order
while disconnected, and resume from the last sequence processed to see the
cancel arrive.

    python examples/strategy.py --target 127.0.0.1:50051 --account acct-1 --token "$TOKEN"
"""

from __future__ import annotations

import argparse
import asyncio
import os
from decimal import Decimal

from gateway_client import AsyncClient, Order, OrderStatus, OrderType, Side, TimeInForce, UpdateKind


async def run(target: str, account: str, token: str | None) -> None:
    async with AsyncClient(target, token=token) as client:
        # Subscribe from "now" (open() waits until the stream is live). The
        # subscription resumes by itself after a dropped connection; here we
        # also stop and resume it on purpose.
        updates = await client.subscribe([account]).open()
        limit = await client.place_order(
            account,
            "AAPL",
            Side.BUY,
            Decimal("5"),
            order_type=OrderType.LIMIT,
            limit_price=Decimal("0.01"),  # far below the market: it rests
            time_in_force=TimeInForce.GTC,
        )
        # Amend it: a new total quantity and a new price (still far below the
        # market). The answer is PENDING_REPLACE; the outcome comes on the
        # stream. Retries reuse the generated replace_id: one amend at the broker.
        pending = await client.replace_order(
            account, order_id=limit.order_id, quantity=Decimal("6"), limit_price=Decimal("0.02")
        )
        print(f"replace {pending.replace_id}: {pending.status.value}")
        market = await client.place_order(account, "AAPL", Side.BUY, Decimal("10"))

        filled: Order | None = None
        amended: Order | None = None
        async for update in updates:
            if update.fill:
                print(f"#{update.sequence} fill {update.fill.quantity} @ {update.fill.price}")
            if update.order.order_id == market.order_id and update.order.is_terminal:
                filled = update.order
            if update.order.order_id == limit.order_id and update.kind in (
                UpdateKind.REPLACED,
                UpdateKind.REPLACE_REJECTED,
            ):
                print(f"#{update.sequence} {update.kind.value} {update.order.reject_reason}")
                amended = update.order
            if filled is not None and amended is not None:
                break
        updates.close()
        resume_after = updates.last_sequence
        assert filled is not None
        assert filled.status is OrderStatus.FILLED
        assert amended is not None
        if amended.reject_reason:
            raise RuntimeError(f"the broker refused the amend: {amended.reject_reason}")
        assert resume_after is not None

        await client.cancel_order(account, order_id=limit.order_id)
        async for update in client.subscribe([account], after_sequence=resume_after):
            print(f"#{update.sequence} (resumed) {update.order.status.value}")
            if update.order.order_id == limit.order_id and update.order.is_terminal:
                break
        print(
            f"strategy done: market order {filled.order_id} FILLED {filled.filled_quantity} @ "
            f"{filled.average_fill_price}; limit order {limit.order_id} REPLACED "
            f"{amended.quantity} @ {amended.limit_price}, then CANCELED; "
            f"resumed after sequence {resume_after}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--account", default="acct-1")
    parser.add_argument("--token", default=os.environ.get("GATEWAY_TOKEN"))
    args = parser.parse_args()
    asyncio.run(asyncio.wait_for(run(args.target, args.account, args.token), timeout=60))


if __name__ == "__main__":
    main()
