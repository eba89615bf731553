"""Quick start with the blocking client: place, look up, cancel.

python examples/quickstart.py --target 127.0.0.1:50051 --account acct-1
"""

from __future__ import annotations

import argparse
import os
from decimal import Decimal

from gateway_client import Client, OrderType, Side, TimeInForce, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--account", default="acct-1")
    parser.add_argument("--token", default=os.environ.get("GATEWAY_TOKEN"))
    args = parser.parse_args()

    with Client(args.target, token=args.token) as client:
        # A buy limit far below the market (~100) rests until cancelled.
        order = client.place_order(
            args.account,
            "AAPL",
            Side.BUY,
            Decimal("5"),
            order_type=OrderType.LIMIT,
            limit_price=Decimal("0.01"),
            time_in_force=TimeInForce.GTC,
        )
        print(f"placed {order.client_order_id}: {order.status.value}")

        order = client.get_order(args.account, client_order_id=order.client_order_id)
        print(f"{order.symbol} {order.quantity} @ {order.limit_price}: {order.status.value}")

        order = client.cancel_order(args.account, order_id=order.order_id)
        print(f"cancel requested: {order.status.value}")

        try:
            client.get_order(args.account, client_order_id="never-placed")
        except errors.NotFound as error:
            print(f"as expected: {error.code.name if error.code else ''} {error.reason}")
    print("quickstart done")


if __name__ == "__main__":
    main()
