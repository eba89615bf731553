"""An asyncio strategy: the same steps as the Go, TypeScript and Java examples.

Subscribe, rest a limit order, fill a market order, follow the stream until the
market order is FILLED, cancel the limit order while disconnected, and resume
from the last sequence processed to see the cancel arrive.

    python examples/strategy.py --target 127.0.0.1:50051 --account acct-1 --token "$TOKEN"
"""

from __future__ import annotations

import argparse
import asyncio
import os
from decimal import Decimal

from gateway_client import AsyncClient, OrderStatus, OrderType, Side, TimeInForce


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
        market = await client.place_order(account, "AAPL", Side.BUY, Decimal("10"))

        async for update in updates:
            if update.fill:
                print(f"#{update.sequence} fill {update.fill.quantity} @ {update.fill.price}")
            if update.order.order_id == market.order_id and update.order.is_terminal:
                filled = update.order
                break
        updates.close()
        resume_after = updates.last_sequence
        assert filled.status is OrderStatus.FILLED
        assert resume_after is not None

        await client.cancel_order(account, order_id=limit.order_id)
        async for update in client.subscribe([account], after_sequence=resume_after):
            print(f"#{update.sequence} (resumed) {update.order.status.value}")
            if update.order.order_id == limit.order_id and update.order.is_terminal:
                break
        print(
            f"strategy done: market order {filled.order_id} FILLED {filled.filled_quantity} @ "
            f"{filled.average_fill_price}; limit order {limit.order_id} CANCELED; "
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
